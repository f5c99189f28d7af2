import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOExtras
import NIOHTTP1
import NIOPosix
import NIOSSL
import PorticoConfig
import PorticoFunctions

/// The running gateway: its listeners, admin server, per-loop state and the current config.
///
/// Requests never call into this type; it sets things up, swaps config snapshots into every
/// event loop on reload, and drains on shutdown.
public final class Gateway: @unchecked Sendable {
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
    }

    public let configPath: String
    /// The folder of function folders; nil serves no functions.
    public let functionsDirectory: String?
    public private(set) var functions: FunctionRegistry?
    public let metrics: GatewayMetrics
    let logger: Logger
    private let group: MultiThreadedEventLoopGroup
    private let adminGroup: MultiThreadedEventLoopGroup
    private let state: NIOLockedValueBox<State>
    /// One per listener: a `ServerQuiescingHelper` drains the children of a single server
    /// channel (a second one given to it is silently left out of the drain).
    private var quiescers: [ServerQuiescingHelper] = []
    private let accessLogWriter: AccessLogWriter?
    private var loopContexts: [ObjectIdentifier: LoopContext] = [:]
    private var orderedLoopContexts: [LoopContext] = []
    private var serverChannels: [Channel] = []
    private var adminChannel: Channel?
    private var boundAddresses: [String: SocketAddress] = [:]
    private var listenerTLS: [String: ListenerTLS] = [:]

    /// Loads and validates the config; throws `ConfigError` when it is not valid.
    public init(configPath: String, functionsDirectory: String? = nil, eventLoopThreads: Int = System.coreCount,
                logger: Logger) throws {
        self.configPath = configPath
        self.functionsDirectory = functionsDirectory
        self.logger = logger
        let config = try ConfigLoader.load(file: configPath)
        let metrics = GatewayMetrics()
        let snapshot = try RuntimeSnapshot(config: config, generation: 1, metrics: metrics)
        self.state = NIOLockedValueBox(State(snapshot: snapshot))
        self.metrics = metrics
        self.group = MultiThreadedEventLoopGroup(numberOfThreads: max(1, eventLoopThreads))
        // The admin API (and reloads, which read files) never run on a proxy event loop.
        self.adminGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        self.accessLogWriter = config.accessLog.format == .json ? AccessLogWriter() : nil
    }

    public var snapshot: RuntimeSnapshot { state.withLockedValue { $0.snapshot } }
    public var isReady: Bool { state.withLockedValue { $0.ready } }
    public var lastReloadError: String? { state.withLockedValue { $0.lastReloadError } }

    /// Binds every listener and the admin API; returns once they accept connections.
    public func start() throws {
        accessLogWriter?.start()
        var index = 0
        for loop in group.makeIterator() {
            let context = LoopContext(eventLoop: loop, loopIndex: index, snapshot: self.snapshot, metrics: metrics,
                                      accessLogWriter: accessLogWriter)
            loopContexts[ObjectIdentifier(loop)] = context
            orderedLoopContexts.append(context)
            index += 1
        }
        // The loops exist before the registry, so a function change always reaches every one.
        if let functionsDirectory {
            let registry = FunctionRegistry(directory: functionsDirectory, loops: Array(group.makeIterator()),
                                            registry: metrics.registry, logger: logger)
            registry.onChange = { [weak self] published in self?.functionsChanged(published) }
            registry.onEndpointGone = { [weak self] endpoint in self?.dropPools(to: endpoint) }
            functions = registry
            // Deployed before the listeners open, so the first request can reach a function.
            registry.reconcileNow()
            registry.startWatching()
        }
        let snapshot = self.snapshot
        for listener in snapshot.config.listeners {
            let tls = try listener.tls.map { try makeListenerTLS($0) }
            listenerTLS[listener.name] = tls
            let channel = try bind(listener: listener, tls: tls)
            serverChannels.append(channel)
            boundAddresses[listener.name] = channel.localAddress
            logger.info("listening", metadata: [
                "listener": .string(listener.name), "address": .string("\(listener.address)"),
                "tls": .stringConvertible(tls != nil),
            ])
        }
        if let admin = snapshot.config.admin {
            do {
                adminChannel = try AdminServer(gateway: self).bind(address: admin.address, group: adminGroup)
            } catch {
                throw ListenerBindError(what: "admin", address: "\(admin.address)", underlying: error)
            }
            logger.info("admin listening", metadata: ["address": .string("\(admin.address)")])
        }
        activateServiceHealth(snapshot, replacing: nil)
        state.withLockedValue { $0.ready = true }
    }

    private func makeListenerTLS(_ tls: ListenerTLSConfig) throws -> ListenerTLS {
        if try DevelopmentCertificates.createIfMissing(.init(certificate: tls.certificate, key: tls.key)) {
            logger.warning("made a development certificate; do not use it in production", metadata: [
                "certificate": .string(tls.certificate), "key": .string(tls.key),
            ])
        }
        return try ListenerTLS(config: tls)
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

    private func bind(listener: ListenerConfig, tls: ListenerTLS?) throws -> Channel {
        let metrics = self.metrics
        let loopContexts = self.loopContexts
        let name = listener.name
        let quiesce = ServerQuiescingHelper(group: group)
        quiescers.append(quiesce)
        do {
            return try ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(quiesce.makeServerChannelHandler(channel: channel))
                }
            }
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .childChannelOption(.maxMessagesPerRead, value: 16)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    guard let loop = loopContexts[ObjectIdentifier(channel.eventLoop)] else {
                        throw ChannelError.ioOnClosedChannel
                    }
                    try ServerPipeline(listenerName: name, loop: loop, tlsContext: tls?.context,
                                       acceptsPlaintext: tls?.config.mode == .permissive && tls?.config.clientCA != nil,
                                       metrics: metrics)
                        .configure(channel)
                }
            }
            .bind(host: listener.address.host, port: listener.address.port)
            .wait()
        } catch {
            throw ListenerBindError(what: "listener '\(name)'", address: "\(listener.address)", underlying: error)
        }
    }

    /// Functions were deployed, redeployed or undeployed: every event loop gets routes for them.
    private func functionsChanged(_ published: FunctionRegistry.Published) {
        let newSnapshot: RuntimeSnapshot? = state.withLockedValue { state in
            state.functionFailures = published.failures
            guard let snapshot = try? RuntimeSnapshot(config: state.snapshot.config, functions: published.functions,
                                                       generation: state.snapshot.generation + 1,
                                                       previous: state.snapshot, metrics: metrics,
                                                       reloadChangedFiles: false) else { return nil }
            state.snapshot = snapshot
            return snapshot
        }
        guard let newSnapshot else {
            logger.error("function routes could not be compiled; the previous routes keep serving")
            return
        }
        for context in orderedLoopContexts {
            context.eventLoop.execute { context.install(newSnapshot) }
        }
    }

    private func dropPools(to endpoint: HostPort) {
        for context in orderedLoopContexts {
            context.eventLoop.execute { context.dropPool(endpoint) }
        }
    }

    public var functionFailures: [String: String] { state.withLockedValue { $0.functionFailures } }

    /// The address a listener actually bound (its port differs from the config's when that was 0).
    public func boundAddress(listener name: String) -> SocketAddress? { boundAddresses[name] }
    public var adminAddress: SocketAddress? { adminChannel?.localAddress }
    /// The event loops that serve requests, in order (for tests that watch one of them).
    var proxyEventLoops: [EventLoop] { orderedLoopContexts.map(\.eventLoop) }

    /// Starts the outlier-detection intervals and health checks of services new in `snapshot`
    /// and stops those of services it no longer has (or has with other settings). They run on
    /// the admin loop, off the proxy loops.
    private func activateServiceHealth(_ snapshot: RuntimeSnapshot, replacing old: RuntimeSnapshot?) {
        for (name, health) in snapshot.serviceHealth where old?.serviceHealth[name] !== health {
            health.start(on: adminGroup.next())
        }
        for (name, health) in old?.serviceHealth ?? [:] where snapshot.serviceHealth[name] !== health {
            health.stop()
        }
    }

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

    /// Reads the config file again. A valid config replaces the running one on every event
    /// loop; an invalid one is reported and the running config keeps serving. Async because a
    /// new jwt key set is loaded before the config that needs it starts serving.
    @discardableResult
    public func reload() async -> ReloadOutcome {
        // One at a time, in the order asked: a slow reload (a key set to fetch) must not land
        // after, and over, a newer one.
        let task = reloadQueue.withLockedValue { queue in
            let previous = queue
            let task = Task {
                _ = await previous?.value
                return await self.reloadNow()
            }
            queue = task
            return task
        }
        return await task.value
    }

    private let reloadQueue = NIOLockedValueBox<Task<ReloadOutcome, Never>?>(nil)

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
                return snapshot
            }
        } catch {
            let message = "\(error)"
            state.withLockedValue { $0.lastReloadError = message }
            logger.error("config reload rejected; the running config keeps serving", metadata: ["error": .string(message)])
            return ReloadOutcome(succeeded: false, generation: current.generation, message: message)
        }
        // A listener's policies are part of the snapshot and apply now; its socket does not move.
        func sockets(_ config: GatewayConfig) -> [String] { config.listeners.map { "\($0.name) \($0.address) \($0.tls.debugDescription)" } }
        if sockets(newSnapshot.config) != sockets(current.config) || newSnapshot.config.admin != current.config.admin {
            logger.warning("listener and admin addresses and TLS take effect at the next start; routes, services, policies and limits apply now")
        }
        for context in orderedLoopContexts {
            context.eventLoop.execute { context.install(newSnapshot) }
        }
        activateServiceHealth(newSnapshot, replacing: current)
        logger.info("config reloaded", metadata: ["generation": .stringConvertible(newSnapshot.generation)])
        return ReloadOutcome(succeeded: true, generation: newSnapshot.generation, message: "reloaded")
    }

    /// Open and idle upstream connections per endpoint, summed over every event loop.
    func upstreamStatistics() -> EventLoopFuture<[HostPort: (open: Int, idle: Int)]> {
        let futures = orderedLoopContexts.map { context in
            context.eventLoop.submit { context.poolStatistics() }
        }
        return EventLoopFuture.reduce(into: [HostPort: (open: Int, idle: Int)](), futures, on: adminGroup.next()) { total, stats in
            for (endpoint, counts) in stats {
                let previous = total[endpoint] ?? (0, 0)
                total[endpoint] = (previous.open + counts.open, previous.idle + counts.idle)
            }
        }
    }

    /// Stops accepting, lets in-flight requests finish for up to `drainTimeout`, then closes
    /// everything that is left.
    public func shutdown() async {
        let drainTimeout = snapshot.config.limits.drainTimeout
        state.withLockedValue { $0.ready = false }
        logger.info("draining", metadata: ["timeout": .string("\(drainTimeout)")])
        // Every listener's connections: drained when the last of them closes.
        let drained = EventLoopFuture.andAllComplete(quiescers.map { quiesce in
            let promise = group.next().makePromise(of: Void.self)
            quiesce.initiateShutdown(promise: promise)
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
            logger.warning("drain timeout reached; closing the remaining connections")
        }
        // Workers get SIGTERM only now: requests to functions were part of the drain above.
        await functions?.shutdown()
        for context in orderedLoopContexts {
            try? await context.eventLoop.submit {
                context.shutdownPools()
                context.accessLog?.flush()
            }.get()
        }
        try? await adminChannel?.close()
        accessLogWriter?.stop()
        // A helper fails a promise on its loop when it goes away: let them go while the loops run.
        quiescers = []
        try? await group.shutdownGracefully()
        try? await adminGroup.shutdownGracefully()
    }
}
