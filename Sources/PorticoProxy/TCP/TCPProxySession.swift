import NIOCore
import NIOPosix
import PorticoConfig
import PorticoCore

/// One connection of a `tcp:` listener: the I/O shell around `TCPProxyStateMachine`.
///
/// Everything runs on the accepting channel's event loop: the upstream is connected on that
/// loop, so both channels, both handlers and this object are touched by one thread and take no
/// lock. Bytes pass as the `ByteBuffer`s they arrived in; the only copy is of the bytes read
/// before the upstream was connected (the ClientHello, for SNI routing).
final class TCPProxySession {
    typealias Side = TCPProxyStateMachine.Side

    let listener: TCPListenerState
    private let routes: TCPRoutes
    let loop: LoopContext
    private(set) var machine: TCPProxyStateMachine
    private var client: ChannelHandlerContext?
    private var upstream: ChannelHandlerContext?
    /// What the client sent before the relay began.
    private var early: ByteBuffer
    private var heldRead: (client: Bool, upstream: Bool) = (false, false)

    private(set) var service: ServiceConfig?
    private(set) var serviceEntry: TCPLoopState.ServiceEntry?
    private var tried: [Bool] = []
    /// The endpoint counted as open in `serviceEntry` (a connect under way or a connection).
    private(set) var endpointIndex: Int?
    private var connecting = false
    private var upstreamClosed = false
    private var finished = false

    private(set) var serverName: String?
    private(set) var clientAddress = "-"
    private(set) var bytesIn = 0
    private(set) var bytesOut = 0
    private var unreportedIn = 0
    private var unreportedOut = 0
    let started = NIODeadline.now()
    private var lastActivity = NIODeadline.now()
    private var idleTimer: Scheduled<Void>?
    private var helloTimer: Scheduled<Void>?

    /// Connect attempts per connection, at most: a refused endpoint hands the connection to the
    /// next one, and a service with every endpoint down does not hold a client for long.
    static let maxConnectAttempts = 3

    init(listener: TCPListenerState, routes: TCPRoutes, loop: LoopContext) {
        self.listener = listener
        self.routes = routes
        self.loop = loop
        self.machine = TCPProxyStateMachine(readsHelloFirst: routes.routesByServerName,
                                            maxConnectAttempts: Self.maxConnectAttempts)
        self.early = ByteBuffer()
    }

    private var config: TCPListenerConfig { routes.config }

    // MARK: Events from the handlers

    func clientActive(_ context: ChannelHandlerContext) {
        client = context
        loop.tcp.opened(self)
        clientAddress = context.channel.remoteAddress.map(Self.describe) ?? "-"
        scheduleIdleCheck(at: lastActivity + config.idleTimeout.timeAmount)
        if routes.routesByServerName {
            helloTimer = context.eventLoop.assumeIsolated().scheduleTask(in: config.helloTimeout.timeAmount) { [self] in
                perform(machine.helloTimedOut())
            }
        } else {
            service = routes.service(forServerName: nil).flatMap { loop.snapshot.servicesByName[$0] }
            perform(service == nil ? machine.helloRouted(toService: false) : machine.accepted())
        }
    }

    func read(_ buffer: ByteBuffer, from side: Side) {
        var buffer = buffer
        switch side {
        case .client:
            bytesIn += buffer.readableBytes
            unreportedIn += buffer.readableBytes
            if machine.isRelaying, let upstream {
                upstream.write(NIOAny(buffer), promise: nil)
                return
            }
            early.writeBuffer(&buffer)
            if machine.isReadingHello { helloBytesArrived() }
        case .upstream:
            bytesOut += buffer.readableBytes
            unreportedOut += buffer.readableBytes
            client?.write(NIOAny(buffer), promise: nil)
        }
    }

    func readComplete(from side: Side) {
        lastActivity = NIODeadline.now()
        switch side {
        case .client: if machine.isRelaying { upstream?.flush() }
        case .upstream: client?.flush()
        }
        reportBytes()
    }

    /// The gateway is stopping and the drain time is over.
    func shutDown() {
        perform(machine.shutDown())
    }

    func inputClosed(_ side: Side) {
        perform(machine.inputClosed(side))
    }

    func inactive(_ side: Side, context: ChannelHandlerContext) {
        switch side {
        case .client:
            client = nil
            perform(machine.closed(.client))
        case .upstream:
            // A connect that came back after the session ended is not this session's upstream.
            guard context === upstream else { return }
            upstream = nil
            upstreamClosed = true
            perform(machine.closed(.upstream))
        }
        finishIfDone()
    }

    /// Reads on `side` wait until the other side can take what they bring.
    func mayRead(_ side: Side) -> Bool {
        switch side {
        case .client:
            if machine.isReadingHello { return true }
            return machine.isRelaying && (upstream?.channel.isWritable ?? false)
        case .upstream:
            return machine.isRelaying && (client?.channel.isWritable ?? false)
        }
    }

    func holdRead(_ side: Side) {
        switch side {
        case .client: heldRead.client = true
        case .upstream: heldRead.upstream = true
        }
    }

    func becameWritable(_ side: Side) {
        resumeRead(side.other)
    }

    private func resumeRead(_ side: Side) {
        switch side {
        case .client:
            guard heldRead.client, mayRead(.client) else { return }
            heldRead.client = false
            client?.read()
        case .upstream:
            guard heldRead.upstream, mayRead(.upstream) else { return }
            heldRead.upstream = false
            upstream?.read()
        }
    }

    // MARK: ClientHello

    private func helloBytesArrived() {
        let outcome = early.withUnsafeReadableBytes { TLSClientHello.parse($0) }
        switch outcome {
        case .needMoreBytes:
            return
        case .complete(let name):
            helloTimer?.cancel()
            serverName = name
            service = routes.service(forServerName: name).flatMap { loop.snapshot.servicesByName[$0] }
            perform(machine.helloRouted(toService: service != nil))
        case .notTLS, .malformed, .tooLarge:
            helloTimer?.cancel()
            perform(machine.helloFailed())
        }
    }

    // MARK: Actions

    private func perform(_ action: TCPProxyStateMachine.Action) {
        switch action {
        case .none:
            break
        case .connect:
            connectNext()
        case .startRelay(let shutdownUpstreamOutput):
            guard let upstream else { return }
            if early.readableBytes > 0 {
                upstream.writeAndFlush(NIOAny(early), promise: nil)
                early = ByteBuffer()
            }
            if shutdownUpstreamOutput { shutdownOutput(upstream) }
            // Reads held while connecting start now; the upstream's first read too.
            heldRead.client = heldRead.client || machine.isRelaying
            resumeRead(.client)
            resumeRead(.upstream)
        case .shutdownOutput(let side):
            if let context = side == .client ? client : upstream { shutdownOutput(context) }
        case .close:
            helloTimer?.cancel()
            idleTimer?.cancel()
            for context in [client, upstream].compactMap({ $0 }) { flushAndClose(context) }
            finishIfDone()
        }
    }

    /// FIN after what was written: NIO sends an output close once its pending writes are out.
    private func shutdownOutput(_ context: ChannelHandlerContext) {
        context.flush()
        context.close(mode: .output, promise: nil)
    }

    /// A full close drops writes still pending, so it waits for them (an empty write completes
    /// after every write before it).
    private func flushAndClose(_ context: ChannelHandlerContext) {
        let written = context.eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(NIOAny(ByteBuffer()), promise: written)
        written.futureResult.assumeIsolated().whenComplete { _ in context.close(promise: nil) }
    }

    // MARK: Connecting

    private func connectNext() {
        guard let service, let client else {
            perform(machine.connectFailed(endpointsLeft: false))
            return
        }
        let entry = serviceEntry ?? loop.tcp.entry(for: service)
        if serviceEntry == nil {
            serviceEntry = entry
            tried = Array(repeating: false, count: entry.endpoints.count)
        }
        let health = loop.snapshot.serviceHealth.isEmpty ? nil : loop.snapshot.serviceHealth[service.name]
        guard let index = TCPLoopState.pick(in: entry, limit: service.circuitBreaker?.maxConnections,
                                            available: health?.availability, tried: tried, random: &loop.random) else {
            perform(tried.contains(true) ? machine.connectFailed(endpointsLeft: false) : machine.noEndpointFree())
            return
        }
        tried[index] = true
        entry.opened(index)
        endpointIndex = index
        connecting = true
        let endpoint = entry.endpoints[index]
        let eventLoop = client.eventLoop
        // The upstream channel is made on this loop, where this runs.
        let session = NIOLoopBound(self, eventLoop: eventLoop)
        ClientBootstrap(group: eventLoop)
            .connectTimeout(service.connectTimeout.timeAmount)
            .channelOption(.allowRemoteHalfClosure, value: true)
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(TCPRelayHandler(side: .upstream, session: session.value))
                }
            }
            .connect(resolvingOnlyNames: endpoint.host, port: endpoint.port)
            .assumeIsolated()
            .whenComplete { [self] result in
                connecting = false
                switch result {
                case .success(let channel):
                    connected(channel, endpointIndex: index, health: health)
                case .failure:
                    connectFailed(endpointIndex: index, health: health)
                }
            }
    }

    private func connected(_ channel: Channel, endpointIndex index: Int, health: ServiceHealth?) {
        health?.recordResponse(endpoint: index, status: 200)
        guard machine.end == nil, let handler = try? channel.pipeline.syncOperations.handler(type: TCPRelayHandler.self),
              let context = handler.context else {
            channel.close(promise: nil)
            finishIfDone()
            return
        }
        upstream = context
        perform(machine.connected())
    }

    private func connectFailed(endpointIndex index: Int, health: ServiceHealth?) {
        health?.recordFailure(endpoint: index)
        serviceEntry?.closed(index)
        endpointIndex = nil
        if let service { listener.connectFailureCounter(service: service.name).increment() }
        perform(machine.connectFailed(endpointsLeft: tried.contains(false)))
        finishIfDone()
    }

    // MARK: Timers

    private func scheduleIdleCheck(at deadline: NIODeadline) {
        guard let client else { return }
        idleTimer = client.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { [self] in
            let due = lastActivity + config.idleTimeout.timeAmount
            if NIODeadline.now() >= due {
                perform(machine.idleTimedOut())
            } else {
                scheduleIdleCheck(at: due)
            }
        }
    }

    // MARK: The end

    private func reportBytes() {
        if unreportedIn > 0 { listener.receivedBytes.increment(by: Int64(unreportedIn)) }
        if unreportedOut > 0 { listener.sentBytes.increment(by: Int64(unreportedOut)) }
        unreportedIn = 0
        unreportedOut = 0
    }

    /// Once both channels are gone and no connect is under way: counters, the access-log line,
    /// and the listener's connection slot back.
    private func finishIfDone() {
        guard !finished, client == nil, machine.end != nil, !connecting, upstream == nil else { return }
        finished = true
        loop.tcp.finished(self)
        helloTimer?.cancel()
        idleTimer?.cancel()
        if let index = endpointIndex { serviceEntry?.closed(index) }
        reportBytes()
        writeAccessLog()
    }

    private static func describe(_ address: SocketAddress) -> String {
        guard let ip = address.ipAddress, let port = address.port else { return "\(address)" }
        return address.protocol == .inet6 ? "[\(ip)]:\(port)" : "\(ip):\(port)"
    }
}
