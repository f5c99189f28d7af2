import NIOCore
import NIOHTTP2
import NIOSSL
import NIOTLS
import PorticoAuth
import PorticoConfig
import Prometheus
import PorticoHTTP1

/// Builds the pipeline of an accepted client connection.
///
/// Cleartext: one port speaks HTTP/1.1 and h2c with prior knowledge; the first bytes decide.
/// TLS: ALPN decides between h2 and http/1.1. Either way each request, or each HTTP/2 stream,
/// ends in a `ProxyHandler` as HTTP/1-style parts, so the proxy logic exists once.
struct ServerPipeline {
    let listenerName: String
    let loop: LoopContext
    let tlsContext: NIOSSLContext?
    /// Plaintext is served on the TLS port too (a `permissive` mTLS listener).
    let acceptsPlaintext: Bool
    let metrics: GatewayMetrics
    /// This listener's `portico_listener_active_connections`, looked up once per listener.
    var listenerConnections: Gauge?

    func configure(_ channel: Channel) throws {
        let sync = channel.pipeline.syncOperations
        // Counted by the close future rather than by a handler that every read would pass.
        let gauge = metrics.downstreamConnections
        let listenerGauge = listenerConnections
        gauge.increment()
        listenerGauge?.increment()
        channel.closeFuture.whenComplete { _ in
            gauge.decrement()
            listenerGauge?.decrement()
        }
        let clientAddress = channel.remoteAddress?.ipAddress ?? "-"
        try sync.addHandler(ConnectionSetupDeadline(timeout: limits.idle))
        if let tlsContext, acceptsPlaintext {
            // A TLS connection starts with a handshake record (content type 22); anything
            // else is plaintext HTTP, as Istio's permissive mode sniffs it.
            try sync.addHandler(ProtocolSniffer.tlsOrPlaintext(
                tls: { channel in try configureTLS(channel, context: tlsContext, clientAddress: clientAddress) },
                plaintext: { channel in try configureCleartext(channel, clientAddress: clientAddress) }))
        } else if let tlsContext {
            try configureTLS(channel, context: tlsContext, clientAddress: clientAddress)
        } else {
            try configureCleartext(channel, clientAddress: clientAddress)
        }
    }

    private func configureTLS(_ channel: Channel, context: NIOSSLContext, clientAddress: String) throws {
        let sync = channel.pipeline.syncOperations
        try sync.addHandler(NIOSSLServerHandler(context: context))
        // Hears a failed handshake's error before anything else can swallow it, and leaves once
        // the handshake is done.
        try sync.addHandler(TLSHandshakeFailureCounter(listener: listenerName, metrics: metrics))
        try sync.addHandler(ApplicationProtocolNegotiationHandler { result, channel in
            channel.eventLoop.makeCompletedFuture {
                // The handshake is over: a client certificate, if any, has been verified.
                let peer = (try? channel.pipeline.syncOperations.nioSSL_peerCertificate())
                    .flatMap { $0 }
                    .flatMap { try? PeerIdentity(derEncoded: $0.toDERBytes()) }
                switch result {
                case .negotiated("h2"):
                    try configureHTTP2(channel, scheme: "https", clientAddress: clientAddress, peer: peer)
                default:
                    try configureHTTP1(channel, scheme: "https", clientAddress: clientAddress, peer: peer)
                }
            }
        })
    }

    private func configureCleartext(_ channel: Channel, clientAddress: String) throws {
        try channel.pipeline.syncOperations.addHandler(ProtocolSniffer.cleartext(
            http1: { channel in try configureHTTP1(channel, scheme: "http", clientAddress: clientAddress) },
            http2: { channel in try configureHTTP2(channel, scheme: "http", clientAddress: clientAddress) }))
    }

    /// The listener's `headersWithUnderscores`, from the config the connection starts under.
    private var underscoreHeaders: UnderscoreHeaderAction {
        loop.snapshot.config.listeners.first { $0.name == listenerName }?.headersWithUnderscores ?? .drop
    }

    private var limits: (headers: Int, idle: TimeAmount, head: TimeAmount) {
        let limits = loop.snapshot.config.limits
        return (loop.snapshot.maxRequestHeaders, limits.idleTimeout.timeAmount, limits.requestHeadersTimeout.timeAmount)
    }

    func configureHTTP1(_ channel: Channel, scheme: String, clientAddress: String, peer: PeerIdentity? = nil) throws {
        let info = DownstreamConnectionInfo(scheme: scheme, listenerName: listenerName,
                                            clientAddress: clientAddress, protocolName: "HTTP/1.1", peer: peer,
                                            underscoreHeaders: underscoreHeaders)
        let sync = channel.pipeline.syncOperations
        // A client that sends its request and shuts its side still gets the answer
        // (`HTTP1ServerConnection` closes after it).
        try channel.syncOptions?.setOption(.allowRemoteHalfClosure, value: true)
        let limits = self.limits
        try Self.addHTTP1Handlers(sync, maxRequestHeaders: limits.headers, idleTimeout: limits.idle, headTimeout: limits.head)
        try sync.addHandler(ProxyHandler(loop: loop, connection: info))
        // Last: if a step above throws, the connection keeps the deadline.
        ConnectionSetupDeadline.setupFinished(sync)
    }

    /// The handlers between the socket (or TLS) and an HTTP/1.1 connection's `ProxyHandler`.
    ///
    /// Two, not NIO's usual five or six: each one is a hop for every request part and every
    /// write (see `HTTP1ServerConnection`).
    static func addHTTP1Handlers(_ sync: ChannelPipeline.SynchronousOperations, maxRequestHeaders: Int,
                                 idleTimeout: TimeAmount, headTimeout: TimeAmount = .seconds(10)) throws {
        // `maxRequestHeaders` counts the target and the fields (the edge check in
        // `ProxyHandler` answers 431 at that exact boundary, for HTTP/2 too); the head adds a
        // method, a version and line ends to that, which the slack leaves room for.
        try sync.addHandler(HTTP1RequestReader(maxHeadBytes: maxRequestHeaders + 64, headTimeout: headTimeout))
        try sync.addHandler(HTTP1ServerConnection(idleTimeout: idleTimeout))
    }

    func configureHTTP2(_ channel: Channel, scheme: String, clientAddress: String, peer: PeerIdentity? = nil) throws {
        let info = DownstreamConnectionInfo(scheme: scheme, listenerName: listenerName,
                                            clientAddress: clientAddress, protocolName: "HTTP/2", peer: peer,
                                            underscoreHeaders: underscoreHeaders)
        var connectionConfiguration = NIOHTTP2Handler.ConnectionConfiguration()
        connectionConfiguration.initialSettings = [
            HTTP2Setting(parameter: .maxConcurrentStreams, value: 256),
            // Extended CONNECT (RFC 8441): WebSockets over HTTP/2.
            HTTP2Setting(parameter: .enableConnectProtocol, value: 1),
            // Above the edge limit, so an oversized header list reaches the ProxyHandler and
            // gets a 431 rather than a protocol error.
            HTTP2Setting(parameter: .maxHeaderListSize, value: limits.headers + 64 * 1024),
        ]
        // NIO's checks of header blocks and of `content-length` against DATA are off: they ran
        // on every stream a second time, over `String`s, what Portico checks anyway. A request
        // block meets RFC 9113 8.2-8.3 in `RequestHead(http2Fields:)`, its trailers in
        // `http2Trailers`, its body length in `HTTP2ServerStream.bodyLength`; what goes out is
        // checked as the HTTP/1 writer checks it (`HTTP2ServerStream.write`).
        connectionConfiguration.headerBlockValidation = .disabled
        connectionConfiguration.contentLengthValidation = .disabled
        let sync = channel.pipeline.syncOperations
        try sync.addHandler(FlushCoalescingHandler())
        try sync.addHandler(HTTP2ConnectionErrorGuard())
        // No stream multiplexer: the streams are a table in `HTTP2ServerConnection`.
        try sync.addHandler(NIOHTTP2Handler(mode: .server, connectionConfiguration: connectionConfiguration))
        // And above it: the HTTP/2 handler is flushed once a tick, not once a stream.
        try sync.addHandler(FlushCoalescingHandler())
        try sync.addHandler(HTTP2ServerConnection(loop: loop, connection: info, idleTimeout: limits.idle))
        ConnectionSetupDeadline.setupFinished(sync)
    }
}

/// Bounds a new connection's setup by the idle timeout: until its protocol is known and, on
/// TLS, its handshake is done. No HTTP handler and so no idle timer is there yet, and a client
/// that connects and says nothing, or stalls mid-handshake, would hold its socket for ever
/// (Envoy bounds the same stage with its listener filter timeout). Reads pass through.
final class ConnectionSetupDeadline: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer

    private let timeout: TimeAmount
    private var task: Scheduled<Void>?

    init(timeout: TimeAmount) {
        self.timeout = timeout
    }

    /// The HTTP handlers are in place, with idle timers of their own: the deadline goes.
    static func setupFinished(_ sync: ChannelPipeline.SynchronousOperations) {
        guard let context = try? sync.context(handlerType: ConnectionSetupDeadline.self) else { return }
        sync.removeHandler(context: context, promise: nil)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { start(context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        start(context)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        cancel()
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        cancel()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        // Shutting down while the connection is still being set up (a TLS handshake, or too
        // few bytes to tell its protocol): there is no request to finish.
        if event is ChannelShouldQuiesceEvent {
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    private func start(_ context: ChannelHandlerContext) {
        guard task == nil else { return }
        task = context.eventLoop.assumeIsolated().scheduleTask(in: timeout) {
            context.close(promise: nil)
        }
    }

    private func cancel() {
        task?.cancel()
        task = nil
    }
}

/// Looks at a connection's first bytes, configures the pipeline for what they are, replays
/// them into it, and steps aside: HTTP/1.1 or h2c on a cleartext port, TLS or plaintext on a
/// permissive mTLS port.
final class ProtocolSniffer: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    /// True for the first kind, false for the second, nil to wait for more bytes.
    private let decide: (ByteBufferView) -> Bool?
    private let first: (Channel) throws -> Void
    private let second: (Channel) throws -> Void
    private var buffered: ByteBuffer?

    private init(decide: @escaping (ByteBufferView) -> Bool?, first: @escaping (Channel) throws -> Void,
                 second: @escaping (Channel) throws -> Void) {
        self.decide = decide
        self.first = first
        self.second = second
    }

    /// h2c with prior knowledge by the connection preface (RFC 9113 3.4), else HTTP/1.1.
    static func cleartext(http1: @escaping (Channel) throws -> Void, http2: @escaping (Channel) throws -> Void) -> ProtocolSniffer {
        ProtocolSniffer(decide: { bytes in
            let preface = HTTP2ClientStreamTracker.preface
            let compared = min(bytes.count, preface.count)
            let matches = bytes.prefix(compared).elementsEqual(preface.prefix(compared))
            return matches && compared < preface.count ? nil : matches
        }, first: http2, second: http1)
    }

    /// TLS by its first record (a handshake, content type 22), else plaintext, as Istio's
    /// permissive mode tells them apart.
    static func tlsOrPlaintext(tls: @escaping (Channel) throws -> Void, plaintext: @escaping (Channel) throws -> Void) -> ProtocolSniffer {
        ProtocolSniffer(decide: { bytes in bytes.first.map { $0 == 22 } }, first: tls, second: plaintext)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = unwrapInboundIn(data)
        if buffered == nil {
            buffered = incoming
        } else {
            buffered!.writeBuffer(&incoming)
        }
        guard let isFirst = decide(buffered!.readableBytesView) else { return }  // Not enough yet to tell.
        do {
            try (isFirst ? first : second)(context.channel)
        } catch {
            context.close(promise: nil)
            return
        }
        let data = buffered!
        buffered = nil
        context.fireChannelRead(wrapInboundOut(data))
        context.fireChannelReadComplete()
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }
}

/// Gathers the flushes an HTTP/2 connection gets within one event-loop tick into one.
///
/// Each stream's response ends when its own upstream connection is read, and each of those
/// would flush the shared connection: one write system call per response. Deferred to the end
/// of the tick, the responses that arrived together (one `epoll_wait` often returns dozens of
/// upstream sockets) leave in one write.
final class FlushCoalescingHandler: ChannelOutboundHandler {
    typealias OutboundIn = Any

    private var flushScheduled = false
    /// Made once per connection rather than per flush (a closure that captures is a heap
    /// allocation each time it is made); it holds the context until the handler leaves.
    private var deferredFlush: (() -> Void)?

    func handlerAdded(context: ChannelHandlerContext) {
        deferredFlush = { [self] in
            flushScheduled = false
            context.flush()
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        deferredFlush = nil
    }

    /// A close in the same tick as a write (the connection manager closing a drained
    /// connection, a GOAWAY after a connection error) must not overtake the pending flush: NIO
    /// and NIOSSL drop writes that were never flushed when a channel closes.
    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        if flushScheduled { context.flush() }
        context.close(mode: mode, promise: promise)
    }

    func flush(context: ChannelHandlerContext) {
        guard !flushScheduled else { return }
        guard let deferredFlush else { return context.flush() }
        flushScheduled = true
        context.eventLoop.assumeIsolated().execute(deferredFlush)
    }
}
