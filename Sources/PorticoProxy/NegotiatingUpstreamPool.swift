import NIOCore
import NIOPosix
import NIOSSL
import NIOTLS
import PorticoConfig

/// A service with `protocol: auto`: its endpoint speaks HTTP/2 or HTTP/1.1 over TLS, whichever
/// ALPN agrees on, and the requests go to an HTTP/2 or an HTTP/1.1 pool accordingly.
///
/// The first lease opens one TLS connection that offers `h2` and `http/1.1` only to learn the
/// endpoint's choice; it is closed once the handshake is done, and the waiters go on to the
/// pool of the protocol learnt. That costs one handshake per endpoint and event loop, once:
/// handing the probe's socket to the pool would save it, at the price of a second way for each
/// pool to take on a connection. A failed probe fails its waiters as a failed connect, and the
/// next lease probes again.
final class NegotiatingUpstreamPool: UpstreamSource {
    let endpoint: HostPort
    private let eventLoop: EventLoop
    private let connectTimeout: TimeAmount
    private let tls: UpstreamTLS
    private let http1: UpstreamPool
    private let http2: HTTP2UpstreamPool
    /// What the endpoint chose, once learnt.
    private var learnt: (any UpstreamSource)?
    private var waiters: [Int: any UpstreamLeaseWaiter] = [:]
    private var waiterOrder: [Int] = []
    /// Leases that waited for the probe and were handed on: this pool's id to the learnt
    /// pool's. Ids of this pool are negative, so they never collide with the learnt pool's,
    /// which every later lease returns as they are; the table holds only the probe's waiters.
    private var forwarded: [Int: Int] = [:]
    private var nextWaiterID = -1
    private var probing = false
    private var isShutDown = false
    private let connectMetrics: UpstreamConnectMetrics

    init(endpoint: HostPort, eventLoop: EventLoop, maxConnections: Int, connectTimeout: TimeAmount,
         idleTimeout: TimeAmount, metrics: GatewayMetrics, connectMetrics: UpstreamConnectMetrics, tls: UpstreamTLS) {
        self.connectMetrics = connectMetrics
        self.endpoint = endpoint
        self.eventLoop = eventLoop
        self.connectTimeout = connectTimeout
        self.tls = tls
        self.http1 = UpstreamPool(endpoint: endpoint, eventLoop: eventLoop, maxConnections: maxConnections,
                                  connectTimeout: connectTimeout, idleTimeout: idleTimeout, metrics: metrics,
                                  connectMetrics: connectMetrics, tls: tls,
                                  acceptedProtocols: ["http/1.1", nil])
        self.http2 = HTTP2UpstreamPool(endpoint: endpoint, eventLoop: eventLoop, maxConnections: maxConnections,
                                       connectTimeout: connectTimeout, idleTimeout: idleTimeout, metrics: metrics,
                                       connectMetrics: connectMetrics, tls: tls)
    }

    var openConnections: Int { http1.openConnections + http2.openConnections }
    var idleConnections: Int { http1.idleConnections + http2.idleConnections }

    @discardableResult
    func lease(for waiter: any UpstreamLeaseWaiter) -> Int {
        if let learnt { return learnt.lease(for: waiter) }
        let id = nextWaiterID
        nextWaiterID = nextWaiterID == Int.min ? -1 : nextWaiterID - 1
        guard !isShutDown else {
            waiter.leaseCompleted(.failure(.shuttingDown))
            return id
        }
        waiters[id] = waiter
        waiterOrder.append(id)
        if !probing { probe() }
        return id
    }

    func cancelLease(_ id: Int) {
        if id >= 0 {
            learnt?.cancelLease(id)
        } else if waiters.removeValue(forKey: id) != nil {
            waiterOrder.removeAll { $0 == id }
        } else if let inner = forwarded.removeValue(forKey: id) {
            learnt?.cancelLease(inner)
        }
    }

    func shutdown() {
        isShutDown = true
        http1.shutdown()
        http2.shutdown()
        failWaiters(.shuttingDown)
    }

    private func failWaiters(_ error: UpstreamPoolError) {
        let order = waiterOrder
        waiterOrder.removeAll()
        for id in order { waiters.removeValue(forKey: id)?.leaseCompleted(.failure(error)) }
    }

    /// One TLS handshake offering both protocols; the answer decides the pool.
    private func probe() {
        probing = true
        let learnt = eventLoop.makePromise(of: String?.self)
        let timer = eventLoop.scheduleTask(in: connectTimeout) { learnt.fail(UpstreamTLSError.handshakeTimeout) }
        let tls = self.tls
        let serverHostname = tls.serverHostname(for: endpoint)
        // The ALPN result counts once the peer's names were checked too.
        let checked = eventLoop.makePromise(of: Void.self)
        let negotiated = eventLoop.makePromise(of: String?.self)
        checked.futureResult.and(negotiated.futureResult).map(\.1).cascade(to: learnt)
        // The probe is a connect of its own (the pool it picks connects again).
        let connectStarted = connectMetrics.started()
        learnt.futureResult.whenFailure { error in
            checked.fail(error)
            negotiated.fail(error)
        }
        ClientBootstrap(group: eventLoop)
            .connectTimeout(connectTimeout)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let sync = channel.pipeline.syncOperations
                    try sync.addHandler(NIOSSLClientHandler(context: tls.context, serverHostname: serverHostname))
                    // Ahead of the name check, which leaves the pipeline as the handshake ends.
                    try sync.addHandler(ALPNListener(promise: negotiated))
                    try sync.addHandler(UpstreamHandshakeHandler(tls: tls, promise: checked))
                }
            }
            .connect(resolvingOnlyNames: endpoint.host, port: endpoint.port)
            .assumeIsolated()
            .whenComplete { result in
                switch result {
                case .success(let channel):
                    learnt.futureResult.whenComplete { _ in channel.close(promise: nil) }
                    channel.closeFuture.whenComplete { _ in learnt.fail(UpstreamTLSError.closedDuringHandshake) }
                case .failure(let error):
                    checked.fail(error)
                    negotiated.fail(error)
                    learnt.fail(error)
                }
            }
        learnt.futureResult.assumeIsolated().whenComplete { [self] result in
            timer.cancel()
            probing = false
            guard !isShutDown else { return }
            switch result {
            case .success(let negotiated):
                connectMetrics.succeeded(since: connectStarted)
                let pool: any UpstreamSource = negotiated == "h2" ? http2 : http1
                self.learnt = pool
                let order = waiterOrder
                waiterOrder.removeAll()
                for id in order {
                    guard let waiter = waiters.removeValue(forKey: id) else { continue }
                    forwarded[id] = pool.lease(for: waiter)
                }
            case .failure(let error):
                connectMetrics.failed(error)
                failWaiters(.connectFailed)
            }
        }
    }
}

/// Reports the protocol ALPN agreed on (nil: none) once the TLS handshake is done.
private final class ALPNListener: ChannelInboundHandler {
    typealias InboundIn = NIOAny
    private let promise: EventLoopPromise<String?>

    init(promise: EventLoopPromise<String?>) {
        self.promise = promise
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case TLSUserEvent.handshakeCompleted(let negotiated) = event { promise.succeed(negotiated) }
        context.fireUserInboundEventTriggered(event)
    }
}
