import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOExtras
import NIOPosix
import NIOSSL
import PorticoConfig
import ServiceLifecycle
import PorticoHTTP1

/// The running gateway: its event loops, per-loop state and the current config, and the steps
/// its services (`ListenerService`, `AdminService`, ...) take to start and stop.
///
/// Requests never call into this type; it sets things up, swaps config snapshots into every
/// event loop on reload, and drains on shutdown. Everything it holds is immutable or behind a
/// lock, and each loop's `LoopContext` is reachable only on its own loop, so the compiler checks
/// that it is `Sendable`.
public final class Gateway: Sendable {
    public struct ReloadOutcome: Sendable {
        public var succeeded: Bool
        public var generation: Int
        public var message: String
    }

    private struct State {
        var snapshot: RuntimeSnapshot
        var functionFailures: [String: String] = [:]
        var ready = false
        var lastReloadError: String?
        var reloadCount = 0
        var boundAddresses: [String: SocketAddress] = [:]
        var adminAddress: SocketAddress?
        /// The snapshot whose health checks run; nil while they do not (before `HealthCheckService`
        /// starts them and after it stops them), so a reload then starts none.
        var healthChecked: RuntimeSnapshot?
    }

    public let configPath: String
    /// Where functions come from (the `portico` command wires in PorticoFunctions' registry);
    /// nil serves no functions. Made in `init`, deployed by `ListenerService` before the
    /// listeners open, watched and stopped by `FunctionSupervisorService`.
    public let functions: (any FunctionSource)?
    public let metrics: GatewayMetrics
    let logger: Logger
    let group: MultiThreadedEventLoopGroup
    private let adminGroup: MultiThreadedEventLoopGroup
    private let state: NIOLockedValueBox<State>
    let accessLogWriter: AccessLogWriter?
    let proxyLoops: ProxyLoops
    /// The live taps (`portico tap`, the dashboard's local replies), pushed to every loop.
    let taps: TapHub
    /// Watches the proxy loops for a task that waits too long (from the admin loop).
    private let watchdog: LoopWatchdog
    /// Loaded once, in `init`, and never replaced (a rotated file is loaded into the same
    /// `ListenerTLS`). It used to be filled in by `start()` while the config watcher, a service
    /// running at the same time, iterated it every second: a data race on the dictionary.
    private let listenerTLS: [String: ListenerTLS]
    /// Reloads wait here for `ReloadService`, which runs them one at a time, in order.
    private let reloadRequests: AsyncStream<EventLoopPromise<ReloadOutcome>>
    private let reloadRequestsInput: AsyncStream<EventLoopPromise<ReloadOutcome>>.Continuation

    /// Loads and validates the config, makes the event loops and loads the listeners' TLS
    /// files; throws `ConfigError` when the config is not valid. `functions`, when given, makes
    /// the source of the functions the gateway serves, once the event loops exist.
    public init(configPath: String, eventLoopThreads: Int = System.coreCount, logger: Logger,
                functions makeFunctions: ((FunctionSourceHooks) -> any FunctionSource)? = nil) throws {
        self.configPath = configPath
        self.logger = logger
        let config = try ConfigLoader.load(file: configPath)
        let metrics = GatewayMetrics()
        let snapshot = try RuntimeSnapshot(config: config, generation: 1, metrics: metrics)
        metrics.configLoaded(generation: snapshot.generation, byReload: false)
        var listenerTLS: [String: ListenerTLS] = [:]
        for listener in config.listeners {
            listenerTLS[listener.name] = try listener.tls.map { try Self.makeListenerTLS($0, logger: logger) }
        }
        self.listenerTLS = listenerTLS
        let state = NIOLockedValueBox(State(snapshot: snapshot))
        self.state = state
        self.metrics = metrics
        let group = MultiThreadedEventLoopGroup(numberOfThreads: max(1, eventLoopThreads))
        self.group = group
        // The admin API (and reloads, which read files) never run on a proxy event loop.
        self.adminGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let accessLogWriter = config.accessLog.format == .json ? AccessLogWriter() : nil
        self.accessLogWriter = accessLogWriter
        let proxyLoops = ProxyLoops(group: group, snapshot: snapshot, metrics: metrics, accessLogWriter: accessLogWriter)
        self.proxyLoops = proxyLoops
        self.taps = TapHub(loops: proxyLoops)
        self.watchdog = LoopWatchdog(watching: proxyLoops.eventLoops, on: adminGroup.next(), registry: metrics.registry,
                                     logger: logger)
        (reloadRequests, reloadRequestsInput) = AsyncStream.makeStream()
        // The loops exist before the function source, so a function change always reaches every one.
        self.functions = makeFunctions.map { make in
            make(FunctionSourceHooks(
                eventLoops: Array(group.makeIterator()), metricsRegistry: metrics.registry, logger: logger,
                publish: { functions, failures in
                    Self.functionsChanged(functions, failures: failures, state: state, metrics: metrics, loops: proxyLoops,
                                          logger: logger)
                },
                endpointGone: { endpoint in proxyLoops.onEach { $0.dropPool(endpoint) } }))
        }
    }

    public var snapshot: RuntimeSnapshot { state.withLockedValue { $0.snapshot } }
    public var isReady: Bool { state.withLockedValue { $0.ready } }
    public var lastReloadError: String? { state.withLockedValue { $0.lastReloadError } }

    private static func makeListenerTLS(_ tls: ListenerTLSConfig, logger: Logger) throws -> ListenerTLS {
        if try DevelopmentCertificates.createIfMissing(.init(certificate: tls.certificate, key: tls.key)) {
            logger.warning("made a development certificate; do not use it in production", metadata: [
                "certificate": .string(tls.certificate), "key": .string(tls.key),
            ])
        }
        return try ListenerTLS(config: tls)
    }

    // MARK: Listeners (ListenerService)

    /// A bound listener and the helper that drains its connections.
    struct OpenListener: Sendable {
        let channel: Channel
        /// One per listener: a `ServerQuiescingHelper` drains the children of a single server
        /// channel (a second one given to it is silently left out of the drain).
        let quiesce: ServerQuiescingHelper
    }

    /// Binds every listener; returns once they accept connections. When one cannot bind, the
    /// ones already open are closed and the error names the listener.
    func openListeners() async throws -> [OpenListener] {
        let snapshot = self.snapshot
        var open: [OpenListener] = []
        for listener in snapshot.config.listeners {
            let tls = listenerTLS[listener.name]
            do {
                let opened = try await bind(listener: listener, tls: tls)
                open.append(opened)
                state.withLockedValue { $0.boundAddresses[listener.name] = opened.channel.localAddress }
            } catch {
                for opened in open { try? await opened.channel.close() }
                throw error
            }
            logger.info("listening", metadata: [
                "listener": .string(listener.name), "address": .string("\(listener.address)"),
                "tls": .stringConvertible(tls != nil),
            ])
        }
        for listener in snapshot.config.tcp {
            do {
                let opened = try await bindTCP(listener: listener)
                open.append(opened)
                state.withLockedValue { $0.boundAddresses[listener.name] = opened.channel.localAddress }
            } catch {
                for opened in open { try? await opened.channel.close() }
                throw error
            }
            logger.info("listening", metadata: [
                "tcpListener": .string(listener.name), "address": .string("\(listener.address)"),
            ])
        }
        state.withLockedValue { $0.ready = true }
        watchdog.start()
        return open
    }

    /// Loads a listener's certificate, key or client CA again when the file changed on disk
    /// (called once a second). New connections get the new files; a broken file is reported
    /// and the last good ones keep serving.
    public func reloadCertificatesIfChanged() async {
        // A service's client certificate, key or CA changed: a reload makes new pools with
        // them (new connections use the new files; open ones finish with the old).
        if snapshot.upstreamTLS.values.map({ $0.files.takeChange() }).contains(true) {
            logger.info("a service's TLS files changed; reloading")
            await reload()
        }
        for (name, tls) in listenerTLS {
            do {
                if try tls.reloadIfChanged() {
                    logger.info("TLS certificate reloaded", metadata: ["listener": .string(name)])
                }
            } catch {
                logger.error("TLS certificate change rejected; the previous certificate keeps serving",
                             metadata: ["listener": .string(name), "error": .string("\(error)")])
            }
        }
    }

    private func bind(listener: ListenerConfig, tls: ListenerTLS?) async throws -> OpenListener {
        let metrics = self.metrics
        let proxyLoops = self.proxyLoops
        let name = listener.name
        let quiesce = ServerQuiescingHelper(group: group)
        let listenerConnections = metrics.listenerConnections(listener: name)
        do {
            let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(quiesce.makeServerChannelHandler(channel: channel))
                }
            }
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    guard let loop = proxyLoops.context(on: channel.eventLoop) else {
                        throw ChannelError.ioOnClosedChannel
                    }
                    // Set here rather than as the bootstrap's child options, which NIO applies
                    // through a chain of futures: about 15 µs of every new connection.
                    let options = channel.syncOptions
                    try options?.setOption(.tcpOption(.tcp_nodelay), value: 1)
                    try options?.setOption(.maxMessagesPerRead, value: 16)
                    try ServerPipeline(listenerName: name, loop: loop, tlsContext: tls?.context,
                                       acceptsPlaintext: tls?.config.mode == .permissive && tls?.config.clientCA != nil,
                                       metrics: metrics, listenerConnections: listenerConnections)
                        .configure(channel)
                }
            }
            .bind(host: listener.address.host, port: listener.address.port)
            .get()
            return OpenListener(channel: channel, quiesce: quiesce)
        } catch {
            throw ListenerBindError(what: "listener '\(name)'", address: "\(listener.address)", underlying: error)
        }
    }

    /// Stops accepting on every listener at once, lets in-flight requests finish for up to the
    /// drain timeout, then closes the upstream pools.
    func drain(_ listeners: [OpenListener]) async {
        let drainTimeout = snapshot.config.limits.drainTimeout
        state.withLockedValue { $0.ready = false }
        logger.info("draining", metadata: ["timeout": .string("\(drainTimeout)")])
        // Every listener's connections: drained when the last of them closes.
        let drained = EventLoopFuture.andAllComplete(listeners.map { listener in
            let promise = group.next().makePromise(of: Void.self)
            listener.quiesce.initiateShutdown(promise: promise)
            return promise.futureResult
        }, on: group.next())
        // Whichever comes first, the last connection closing or the timeout, settles `outcome`.
        let outcome = group.next().makePromise(of: Bool.self)
        let settled = NIOLockedValueBox(false)
        let settle: @Sendable (Bool) -> Void = { drained in
            let first = settled.withLockedValue { done in
                defer { done = true }
                return !done
            }
            if first { outcome.succeed(drained) }
        }
        drained.whenComplete { _ in settle(true) }
        let timeout = group.next().scheduleTask(in: drainTimeout.timeAmount) { settle(false) }
        if (try? await outcome.futureResult.get()) == true {
            timeout.cancel()
            logger.info("drained")
        } else {
            // They are closed when the event loops stop, after the other services; tcp
            // connections, which nothing asks to finish, are closed now, while the loops run
            // (one closed during the loops' shutdown trips the quiescing helper's collector).
            logger.warning("drain timeout reached; closing the remaining connections")
            await proxyLoops.onEachAndWait { $0.tcp.closeAll() }
        }
        await proxyLoops.onEachAndWait { $0.shutdownPools() }
    }

    // MARK: Admin (AdminService)

    func openAdmin(_ admin: AdminConfig) async throws -> Channel {
        let channel: Channel
        do {
            channel = try await AdminServer(gateway: self).bind(address: admin.address, group: adminGroup)
        } catch {
            throw ListenerBindError(what: "admin", address: "\(admin.address)", underlying: error)
        }
        state.withLockedValue { $0.adminAddress = channel.localAddress }
        logger.info("admin listening", metadata: ["address": .string("\(admin.address)")])
        return channel
    }

    // MARK: Health checks (HealthCheckService)

    /// Starts the outlier-detection intervals and health checks of the running config's
    /// services, on the admin loop (off the proxy loops); from now on reloads keep them in step.
    func startHealthChecks() {
        state.withLockedValue { state in
            guard state.healthChecked == nil else { return }
            activate(state.snapshot, replacing: nil)
            state.healthChecked = state.snapshot
        }
    }

    func stopHealthChecks() {
        state.withLockedValue { state in
            for health in state.healthChecked?.serviceHealth.values.map({ $0 }) ?? [] { health.stop() }
            state.healthChecked = nil
        }
    }

    /// A reload: starts the checks of services new in `snapshot`, stops those of services it no
    /// longer has (or has with other settings), if checks run at all. Under the lock, so that a
    /// reload racing `startHealthChecks` or `stopHealthChecks` never leaves a check running.
    private func followHealthChecks(_ snapshot: RuntimeSnapshot) {
        state.withLockedValue { state in
            guard let running = state.healthChecked else { return }
            activate(snapshot, replacing: running)
            state.healthChecked = snapshot
        }
    }

    private func activate(_ snapshot: RuntimeSnapshot, replacing old: RuntimeSnapshot?) {
        if let oldTracing = old?.tracing, snapshot.tracing?.exporter !== oldTracing.exporter {
            // Tracing was turned off: the spans waiting on the loops go out. The exporter's
            // thread stays (idle) until the gateway stops: a request that began under the old
            // config may still hand it spans.
            let exporter = oldTracing.exporter
            let loops = proxyLoops
            Task {
                await loops.onEachAndWait { loop in loop.traces.flush(to: exporter) }
            }
        }
        for (name, health) in snapshot.serviceHealth where old?.serviceHealth[name] !== health {
            health.start(on: adminGroup.next())
        }
        for (name, health) in old?.serviceHealth ?? [:] where snapshot.serviceHealth[name] !== health {
            health.stop()
        }
    }

    // MARK: Access log (AccessLogService)

    /// Hands every loop's batched lines to the writer.
    func flushAccessLogs() async {
        await proxyLoops.onEachAndWait { $0.accessLog?.flush() }
    }

    // MARK: Functions

    /// Functions were deployed, redeployed or undeployed: every event loop gets routes for them.
    private static func functionsChanged(_ functions: [String: any DeployedFunction], failures: [String: String],
                                         state: NIOLockedValueBox<State>, metrics: GatewayMetrics, loops: ProxyLoops,
                                         logger: Logger) {
        let newSnapshot: RuntimeSnapshot? = state.withLockedValue { state in
            state.functionFailures = failures
            guard let snapshot = try? RuntimeSnapshot(config: state.snapshot.config, functions: functions,
                                                       generation: state.snapshot.generation + 1,
                                                       previous: state.snapshot, metrics: metrics,
                                                       reloadChangedFiles: false) else { return nil }
            state.snapshot = snapshot
            // Under the lock: two changes at once must not leave the older generation showing.
            metrics.configGeneration.set(to: Double(snapshot.generation))
            return snapshot
        }
        guard let newSnapshot else {
            logger.error("function routes could not be compiled; the previous routes keep serving")
            return
        }
        loops.onEach { $0.install(newSnapshot) }
    }

    public var functionFailures: [String: String] { state.withLockedValue { $0.functionFailures } }

    /// The address a listener actually bound (its port differs from the config's when that was 0).
    public func boundAddress(listener name: String) -> SocketAddress? { state.withLockedValue { $0.boundAddresses[name] } }
    public var adminAddress: SocketAddress? { state.withLockedValue { $0.adminAddress } }
    /// The event loops that serve requests, in order (for tests that watch one of them).
    var proxyEventLoops: [EventLoop] { proxyLoops.eventLoops }

    /// Loads the key sets the running config's jwt policies need, before the listeners open,
    /// so that the first request with a token finds its keys. Throws if one cannot be loaded.
    public func loadKeys() async throws {
        let current = snapshot
        for policy in current.config.policies {
            guard case .jwt(let jwt) = policy.kind, let store = current.keyStores[jwt.keys], !store.isLoaded else { continue }
            do {
                try await store.load()
            } catch {
                throw ConfigError([ConfigDiagnostic(location: policy.location, key: "policies.\(policy.name).jwt",
                                                    message: "\(error)")])
            }
        }
    }

    // MARK: Reload (ReloadService)

    /// Reads the config file again. A valid config replaces the running one on every event
    /// loop; an invalid one is reported and the running config keeps serving. Async because a
    /// new jwt key set is loaded before the config that needs it starts serving.
    @discardableResult
    public func reload() async -> ReloadOutcome {
        (try? await requestReload().get()) ?? ReloadOutcome(succeeded: false, generation: snapshot.generation, message: "reload failed")
    }

    /// Asks `ReloadService` for a reload; the future completes (on an admin loop) when it is done.
    public func requestReload() -> EventLoopFuture<ReloadOutcome> {
        let promise = adminGroup.next().makePromise(of: ReloadOutcome.self)
        if case .terminated = reloadRequestsInput.yield(promise) {
            promise.succeed(ReloadOutcome(succeeded: false, generation: snapshot.generation, message: "the gateway is shutting down"))
        }
        return promise.futureResult
    }

    /// Runs reloads one at a time, in the order asked (a slow reload, with a key set to fetch,
    /// must not land after, and over, a newer one), until a graceful shutdown; those asked
    /// before it are still run.
    func serveReloads() async {
        let input = reloadRequestsInput
        await withTaskCancellationHandler {
            await withGracefulShutdownHandler {
                for await request in reloadRequests {
                    request.succeed(await reloadNow())
                }
            } onGracefulShutdown: {
                input.finish()
            }
        } onCancel: {
            input.finish()
        }
    }

    private func reloadNow() async -> ReloadOutcome {
        let current = snapshot
        let newSnapshot: RuntimeSnapshot
        do {
            let config = try ConfigLoader.load(file: configPath)
            let keyStores = try await RuntimeSnapshot.loadKeyStores(for: config, previous: current, logger: logger)
            newSnapshot = try state.withLockedValue { state in
                let snapshot = try RuntimeSnapshot(config: config, functions: state.snapshot.functions,
                                                   generation: state.snapshot.generation + 1,
                                                   previous: state.snapshot, metrics: metrics, keyStores: keyStores)
                state.snapshot = snapshot
                state.lastReloadError = nil
                state.reloadCount += 1
                metrics.configLoaded(generation: snapshot.generation, byReload: true)
                return snapshot
            }
        } catch {
            let message = "\(error)"
            state.withLockedValue { $0.lastReloadError = message }
            metrics.reloadFailed.increment()
            logger.error("config reload rejected; the running config keeps serving", metadata: ["error": .string(message)])
            return ReloadOutcome(succeeded: false, generation: current.generation, message: message)
        }
        // A listener's policies are part of the snapshot and apply now; its socket does not move.
        // So do a tcp listener's service, sni routes and limits; its socket does not move either.
        func sockets(_ config: GatewayConfig) -> [String] {
            config.listeners.map { "\($0.name) \($0.address) \($0.tls.debugDescription)" } + config.tcp.map { "tcp \($0.name) \($0.address)" }
        }
        if sockets(newSnapshot.config) != sockets(current.config) || newSnapshot.config.admin != current.config.admin {
            logger.warning("listener, tcp listener and admin addresses and TLS take effect at the next start; routes, services, policies, limits and tcp routing apply now")
        }
        proxyLoops.onEach { $0.install(newSnapshot) }
        followHealthChecks(newSnapshot)
        logger.info("config reloaded", metadata: ["generation": .stringConvertible(newSnapshot.generation)])
        return ReloadOutcome(succeeded: true, generation: newSnapshot.generation, message: "reloaded")
    }

    /// Open and idle upstream connections per endpoint, summed over every event loop.
    func upstreamStatistics() -> EventLoopFuture<[HostPort: (open: Int, idle: Int)]> {
        proxyLoops.upstreamStatistics(on: adminGroup.next())
    }

    // MARK: Stopping

    /// Stops the event loops, closing any connection the drain left open. Called once the
    /// service group has finished, so no service uses a loop any more.
    public func close() async {
        // An open tap or dashboard would otherwise schedule on the loops as they go.
        taps.close()
        try? await watchdog.stop().get()
        try? await group.shutdownGracefully()
        try? await adminGroup.shutdownGracefully()
    }
}
