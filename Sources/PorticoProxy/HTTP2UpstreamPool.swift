import NIOCore
import NIOHTTP2
import NIOPosix
import NIOSSL
import PorticoConfig
import PorticoCore

/// HTTP/2 connections to one endpoint, owned by one event loop: each lease is a stream on a
/// shared connection (`h2c` in plaintext with prior knowledge, `h2` over TLS with ALPN).
///
/// The decisions are `HTTP2ConnectionPoolStateMachine`'s; like `UpstreamPool`, this shell opens
/// its sockets on the pool's loop, so a request's downstream and upstream share a thread.
final class HTTP2UpstreamPool: UpstreamSource {
    private typealias Machine = HTTP2ConnectionPoolStateMachine<ObjectIdentifier, Int>

    let endpoint: HostPort
    let eventLoop: EventLoop
    private var machine: Machine
    private var connections: [ObjectIdentifier: HTTP2UpstreamConnection] = [:]
    private var waiters: [Int: any UpstreamLeaseWaiter] = [:]
    private var nextWaiterID = 0
    private let connectTimeout: TimeAmount
    private let idleTimeout: TimeAmount
    private let metrics: GatewayMetrics
    private let connectMetrics: UpstreamConnectMetrics
    /// Present for `h2` (over TLS); nil for `h2c`.
    let tls: UpstreamTLS?

    init(endpoint: HostPort, eventLoop: EventLoop, maxConnections: Int, connectTimeout: TimeAmount,
         idleTimeout: TimeAmount, metrics: GatewayMetrics, connectMetrics: UpstreamConnectMetrics, tls: UpstreamTLS? = nil) {
        self.connectMetrics = connectMetrics
        self.endpoint = endpoint
        self.eventLoop = eventLoop
        self.tls = tls
        self.machine = Machine(maxConnections: maxConnections)
        self.connectTimeout = connectTimeout
        self.idleTimeout = idleTimeout
        self.metrics = metrics
    }

    var openConnections: Int { machine.connectionCount }
    var idleConnections: Int { machine.idleCount }

    @discardableResult
    func lease(for waiter: any UpstreamLeaseWaiter) -> Int {
        let id = nextWaiterID
        nextWaiterID &+= 1
        waiters[id] = waiter
        perform(machine.leaseRequested(by: id))
        return id
    }

    func cancelLease(_ id: Int) {
        guard waiters.removeValue(forKey: id) != nil else { return }
        perform(machine.waiterCancelled(id))
    }

    func shutdown() {
        perform(machine.shutdown())
    }

    // MARK: From the connections

    func streamReleased(on connection: HTTP2UpstreamConnection, retire: Bool) {
        let id = ObjectIdentifier(connection)
        perform(machine.streamClosed(on: id))
        // A connection that served its `maxRequestsPerConnection` takes no more.
        if retire { perform(machine.connectionDraining(id)) }
    }

    func connectionDraining(_ connection: HTTP2UpstreamConnection) {
        perform(machine.connectionDraining(ObjectIdentifier(connection)))
    }

    func maxStreamsChanged(on connection: HTTP2UpstreamConnection) {
        perform(machine.maxStreamsChanged(ObjectIdentifier(connection), to: connection.peerMaxStreams))
        perform(machine.connectionsNeeded())
    }

    func connectionClosed(_ connection: HTTP2UpstreamConnection) {
        let id = ObjectIdentifier(connection)
        guard connections.removeValue(forKey: id) != nil else { return }
        metrics.upstreamConnections.decrement()
        perform(machine.connectionClosed(id))
    }

    // MARK: Actions

    private func perform(_ action: Machine.Action) {
        switch action {
        case .none:
            break
        case .lease(let id, to: let leased):
            guard let connection = connections[id] else { return }
            for waiterID in leased {
                if let waiter = waiters.removeValue(forKey: waiterID) {
                    waiter.leaseCompleted(.success(connection.makeStream()))
                } else {
                    // The waiter gave up in the meantime: its stream slot goes straight back.
                    perform(machine.streamClosed(on: id))
                }
            }
        case .createConnection:
            connect()
        case .failWaiters(let failed, let failure):
            for waiter in failed { waiters.removeValue(forKey: waiter)?.leaseCompleted(.failure(Self.error(for: failure))) }
        case .closeConnection(let id):
            connections[id]?.close()
        case .closeAll(let idle, let failed):
            for id in idle { connections[id]?.close() }
            for waiter in failed { waiters.removeValue(forKey: waiter)?.leaseCompleted(.failure(.shuttingDown)) }
        }
    }

    private static func error(for failure: Machine.PoolFailure) -> UpstreamPoolError {
        switch failure {
        case .connectFailed: return .connectFailed
        case .tooManyWaiters: return .overloaded
        case .shuttingDown: return .shuttingDown
        }
    }

    /// Opens a connection; it counts as established once the upstream's SETTINGS arrived, all
    /// within the connect timeout (a peer that accepts and says nothing is a failed connect).
    private func connect() {
        let connection = HTTP2UpstreamConnection(pool: self, scheme: tls == nil ? "http" : "https", idleTimeout: idleTimeout)
        let tls = self.tls
        let serverHostname = tls?.serverHostname(for: endpoint)
        let ready = eventLoop.makePromise(of: Void.self)
        let onLoop = NIOLoopBound(connection, eventLoop: eventLoop)
        let timer = eventLoop.scheduleTask(in: connectTimeout) {
            ready.fail(UpstreamTLSError.handshakeTimeout)
        }
        let connectStarted = connectMetrics.started()
        ClientBootstrap(group: eventLoop)
            .connectTimeout(connectTimeout)
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let sync = channel.pipeline.syncOperations
                    if let tls {
                        try sync.addHandler(NIOSSLClientHandler(context: tls.context, serverHostname: serverHostname))
                        // Checks the peer's names and that ALPN agreed on h2; a failure closes.
                        try sync.addHandler(UpstreamHandshakeHandler(tls: tls, promise: channel.eventLoop.makePromise(),
                                                                     acceptedProtocols: ["h2"]))
                    }
                    var configuration = NIOHTTP2Handler.ConnectionConfiguration()
                    configuration.initialSettings = [
                        HTTP2Setting(parameter: .enablePush, value: 0),
                        HTTP2Setting(parameter: .initialWindowSize, value: HTTP2UpstreamConnection.streamWindow),
                        HTTP2Setting(parameter: .maxHeaderListSize, value: 1 << 20),
                    ]
                    // Frames still in flight for a stream this side reset are ignored only for
                    // the last N streams reset; past that they are a connection error. With up
                    // to 1,024 streams a connection, a burst of cancellations must not get there.
                    configuration.maximumRecentlyResetStreams = HTTP2UpstreamConnection.unlimitedStreams
                    // NIO's checks of header blocks and of `content-length` are off, as on client
                    // connections (`ServerPipeline.configureHTTP2`): the request heads written here
                    // come from requests already checked, and the answers meet the same rules in
                    // `ResponseHead(http2Fields:)` and `HTTP2UpstreamStream.bodyLength`.
                    configuration.headerBlockValidation = .disabled
                    configuration.contentLengthValidation = .disabled
                    try sync.addHandler(NIOHTTP2Handler(mode: .client, connectionConfiguration: configuration))
                    // Above the HTTP/2 handler: the streams a client's read burst opened here go
                    // out in one write at the end of the tick, not one system call each.
                    try sync.addHandler(FlushCoalescingHandler())
                    let connection = onLoop.value
                    connection.onReady = { ready.succeed(()) }
                    try sync.addHandler(connection)
                }
            }
            .connect(resolvingOnlyNames: endpoint.host, port: endpoint.port)
            .assumeIsolated()
            .whenComplete { result in
                switch result {
                case .success(let channel):
                    ready.futureResult.assumeIsolated().whenFailure { _ in channel.close(promise: nil) }
                    channel.closeFuture.whenComplete { _ in ready.fail(UpstreamTLSError.closedDuringHandshake) }
                case .failure(let error):
                    ready.fail(error)
                }
            }
        ready.futureResult.assumeIsolated().whenComplete { [self] result in
            timer.cancel()
            let id = ObjectIdentifier(connection)
            switch result {
            case .success:
                connectMetrics.succeeded(since: connectStarted)
                connections[id] = connection
                metrics.upstreamConnections.increment()
                perform(machine.connectionEstablished(id, maxStreams: connection.peerMaxStreams))
                // Waiters it could not take may need another connection.
                perform(machine.connectionsNeeded())
            case .failure(let error):
                connectMetrics.failed(error)
                connection.onReady = nil
                perform(machine.connectionFailed())
            }
        }
    }
}
