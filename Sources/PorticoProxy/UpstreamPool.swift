import NIOCore
import NIOPosix
import NIOSSL
import PorticoConfig
import PorticoCore
import PorticoHTTP1

enum UpstreamPoolError: Error {
    case connectFailed
    case overloaded
    case shuttingDown
}

/// Keep-alive HTTP/1.1 connections to one endpoint, owned by one event loop.
///
/// The decisions are `ConnectionPoolStateMachine`'s; this shell opens sockets with a
/// `ClientBootstrap` on the same loop, so the downstream and upstream sockets of a request share
/// a thread and no lock is ever taken.
final class UpstreamPool: UpstreamSource {
    private typealias Machine = ConnectionPoolStateMachine<ObjectIdentifier, Int>

    let endpoint: HostPort
    let eventLoop: EventLoop
    private var machine: Machine
    private var connections: [ObjectIdentifier: UpstreamConnection] = [:]
    private var waiters: [Int: any UpstreamLeaseWaiter] = [:]
    private var nextWaiterID = 0
    private let connectTimeout: TimeAmount
    private let idleTimeout: TimeAmount
    private let metrics: GatewayMetrics
    private let connectMetrics: UpstreamConnectMetrics
    /// Present when the endpoint is reached over TLS.
    let tls: UpstreamTLS?
    /// The ALPN results a connection may have (nil: any). A `protocol: auto` service offers
    /// `h2` too, and an endpoint that chose it must not be spoken HTTP/1.1 to.
    private let acceptedProtocols: Set<String?>?
    /// A socket already connected to `endpoint`, for the next connection the pool makes
    /// (`adopt(connectedSocket:)`).
    private var connectedSocket: Int32?

    init(endpoint: HostPort, eventLoop: EventLoop, maxConnections: Int, connectTimeout: TimeAmount,
         idleTimeout: TimeAmount, metrics: GatewayMetrics, connectMetrics: UpstreamConnectMetrics, tls: UpstreamTLS? = nil,
         acceptedProtocols: Set<String?>? = nil) {
        self.connectMetrics = connectMetrics
        self.acceptedProtocols = acceptedProtocols
        self.endpoint = endpoint
        self.eventLoop = eventLoop
        self.tls = tls
        self.machine = Machine(maxConnections: maxConnections)
        self.connectTimeout = connectTimeout
        self.idleTimeout = idleTimeout
        self.metrics = metrics
    }

    var openConnections: Int { machine.openCount }
    var idleConnections: Int { machine.idleCount }

    /// Asks for a connection for `waiter`, which hears on this loop, possibly before `lease`
    /// returns. The returned id cancels the wait.
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

    func release(_ connection: UpstreamConnection, reusable: Bool) {
        connection.detach()
        // A response delimited by the connection closing ends while the channel goes inactive:
        // it must not go back to the pool as if it could carry another request.
        let canReuse = reusable && connection.responseAllowsReuse && connection.isActive
        if !canReuse { connection.close() }
        perform(machine.connectionReleased(ObjectIdentifier(connection), reusable: canReuse))
    }

    /// The connection leaves the pool for good (it was upgraded to another protocol).
    func detach(_ connection: UpstreamConnection) {
        let id = ObjectIdentifier(connection)
        guard connections.removeValue(forKey: id) != nil else { return }
        metrics.upstreamConnections.decrement()
        perform(machine.connectionClosed(id))
    }

    func connectionClosed(_ connection: UpstreamConnection) {
        let id = ObjectIdentifier(connection)
        guard connections.removeValue(forKey: id) != nil else { return }
        metrics.upstreamConnections.decrement()
        perform(machine.connectionClosed(id))
    }

    func shutdown() {
        if let connectedSocket { close(connectedSocket) }
        connectedSocket = nil
        perform(machine.shutdown())
    }

    /// Makes the next connection from `fd`, a plaintext socket already connected to the
    /// endpoint, instead of connecting: a function worker's first connection, which its
    /// supervisor opened to find it ready. The pool owns `fd` from here.
    func adopt(connectedSocket fd: Int32) {
        // Only a pool whose next lease connects takes it (nothing open, nothing on its way,
        // nobody waiting): one parked behind a connect under way would hold a worker that
        // serves one connection at a time.
        guard tls == nil, connectedSocket == nil, machine.openCount == 0, machine.connectingCount == 0,
              machine.waiterCount == 0 else {
            close(fd)
            return
        }
        connectedSocket = fd
    }

    deinit {
        if let connectedSocket { close(connectedSocket) }
    }

    private func perform(_ action: Machine.Action) {
        switch action {
        case .none:
            break
        case .lease(let id, to: let waiter):
            guard let connection = connections[id] else { return }
            if let waiting = waiters.removeValue(forKey: waiter) {
                waiting.leaseCompleted(.success(connection as any LeasedUpstream))
            } else {
                // The waiter gave up in the meantime: the connection goes straight back.
                perform(machine.connectionReleased(id, reusable: true))
            }
        case .createConnection:
            connect()
        case .failWaiter(let waiter, let failure):
            waiters.removeValue(forKey: waiter)?.leaseCompleted(.failure(Self.error(for: failure)))
        case .failWaiters(let failed, let failure):
            for waiter in failed { waiters.removeValue(forKey: waiter)?.leaseCompleted(.failure(Self.error(for: failure))) }
        case .closeConnection(let id):
            connections[id]?.close()
        case .closeAll(let idle, let failed):
            for id in idle { connections[id]?.close() }
            for waiter in failed { waiters.removeValue(forKey: waiter)?.leaseCompleted(.failure(.shuttingDown)) }
        }
    }

    private static func error(for failure: ConnectionPoolStateMachine<ObjectIdentifier, Int>.PoolFailure) -> UpstreamPoolError {
        switch failure {
        case .connectFailed: return .connectFailed
        case .tooManyWaiters: return .overloaded
        case .shuttingDown: return .shuttingDown
        }
    }

    private func connect() {
        let connection = UpstreamConnection(pool: self, idleTimeout: idleTimeout)
        let tls = self.tls
        let acceptedProtocols = self.acceptedProtocols
        let handshake = tls.map { _ in eventLoop.makePromise(of: Void.self) }
        let serverHostname = tls?.serverHostname(for: endpoint)
        // The channel is made on this pool's loop, where this runs.
        let onLoop = NIOLoopBound(connection, eventLoop: eventLoop)
        let connectStarted = connectMetrics.started()
        let adopted = connectedSocket
        connectedSocket = nil
        ClientBootstrap(group: eventLoop)
            .connectTimeout(connectTimeout)
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let sync = channel.pipeline.syncOperations
                    if let tls, let handshake {
                        try sync.addHandler(NIOSSLClientHandler(context: tls.context, serverHostname: serverHostname))
                        try sync.addHandler(UpstreamHandshakeHandler(tls: tls, promise: handshake, acceptedProtocols: acceptedProtocols))
                    }
                    let writer = HTTP1RequestWriter()
                    let reader = HTTP1ResponseReader()
                    try sync.addHandler(writer)
                    try sync.addHandler(reader)
                    try sync.addHandler(onLoop.value)
                    onLoop.value.useCodec(writer: writer, reader: reader)
                }
            }
            .connect(to: endpoint, using: adopted)
            .flatMapErrorThrowing { error in
                handshake?.fail(error)
                throw error
            }
            .flatMap { [connectTimeout] channel in
                // Over TLS the connection is usable once the handshake is done and checked,
                // within the connect timeout too: a peer that accepts and stalls is a failure.
                guard let handshake else { return channel.eventLoop.makeSucceededFuture(channel) }
                let timer = channel.eventLoop.scheduleTask(in: connectTimeout) {
                    handshake.fail(UpstreamTLSError.handshakeTimeout)
                }
                return handshake.futureResult.always { _ in timer.cancel() }.map { channel }.flatMapErrorThrowing { error in
                    channel.close(promise: nil)
                    throw error
                }
            }
            .assumeIsolated()
            .whenComplete { [self] result in
                switch result {
                case .success:
                    connectMetrics.succeeded(since: connectStarted)
                    connections[ObjectIdentifier(connection)] = connection
                    metrics.upstreamConnections.increment()
                    perform(machine.connectionEstablished(ObjectIdentifier(connection)))
                case .failure(let error):
                    connectMetrics.failed(error)
                    perform(machine.connectionFailed())
                }
            }
    }
}
