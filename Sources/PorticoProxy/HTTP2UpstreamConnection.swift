import NIOCore
import NIOHTTP2
import PorticoCore

/// One HTTP/2 connection to an upstream endpoint: the handler behind a client-mode
/// `NIOHTTP2Handler`, keeping a table of the streams that carry requests on it
/// (`HTTP2UpstreamStream`). As on the client side (`HTTP2ServerConnection`), there is no
/// stream multiplexer and no child channel per stream.
///
/// - **Ready** once the peer's first SETTINGS arrived: its `MAX_CONCURRENT_STREAMS` is then
///   known, and the pool may open that many streams on it.
/// - **Flow control.** The connection window is returned as DATA arrives; each stream's own
///   window is returned only as its client takes the body.
/// - **GOAWAY** from the upstream: the streams above its last stream id were never started and
///   are refused (their exchanges may try again, `refused-stream`); the rest finish, and the
///   connection closes once they have.
/// - **Idle.** With no stream open for the idle timeout, the connection closes.
final class HTTP2UpstreamConnection: ChannelDuplexHandler {
    typealias InboundIn = HTTP2Frame
    typealias OutboundIn = HTTP2Frame
    typealias OutboundOut = HTTP2Frame

    /// The window each response stream gets (SETTINGS_INITIAL_WINDOW_SIZE): larger than the
    /// default 64 KiB so that a large answer is not held to one window per round trip.
    static let streamWindow = 1 << 20
    /// The connection-level receive window kept open.
    static let connectionWindowTarget = 16 << 20
    /// Streams one connection may carry when the peer sets no limit.
    static let unlimitedStreams = 1024

    /// Strong: a pool a reload dropped lives until its last connection has closed.
    let pool: HTTP2UpstreamPool
    let scheme: String
    private var context: ChannelHandlerContext?
    private var streams: [HTTP2StreamID: HTTP2UpstreamStream] = [:]
    /// Streams that got frames in the current read burst: their clients are flushed at its end.
    private var touched: [HTTP2UpstreamStream] = []
    private var nextStreamNumber = 1
    private(set) var isReady = false
    private var goAwayReceived = false
    /// The peer's SETTINGS_INITIAL_WINDOW_SIZE: each new stream's send window.
    private var peerInitialWindow = 65_535
    private(set) var peerMaxStreams = HTTP2UpstreamConnection.unlimitedStreams
    private var connectionSendWindow = 65_535
    /// Requests this connection has carried (for `maxRequestsPerConnection`).
    var requestsServed = 0
    private let idle: IdleTimer
    /// Runs once, when the peer's first SETTINGS arrive.
    var onReady: (() -> Void)?

    init(pool: HTTP2UpstreamPool, scheme: String, idleTimeout: TimeAmount) {
        self.pool = pool
        self.scheme = scheme
        self.idle = IdleTimer(timeout: idleTimeout)
    }

    var eventLoop: EventLoop { pool.eventLoop }
    var allocator: ByteBufferAllocator { context?.channel.allocator ?? ByteBufferAllocator() }
    var isWritable: Bool { connectionSendWindow > 0 && (context?.channel.isWritable ?? false) }
    var openStreams: Int { streams.count }

    func makeStream() -> HTTP2UpstreamStream {
        HTTP2UpstreamStream(connection: self, receiveWindow: Self.streamWindow, sendWindow: peerInitialWindow)
    }

    // MARK: Lifecycle

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        if context.channel.isActive { channelBecameActive(context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        channelBecameActive(context)
        context.fireChannelActive()
    }

    private func channelBecameActive(_ context: ChannelHandlerContext) {
        // The connection window starts at 64 KiB (RFC 9113 6.9.2); it is widened at once.
        let increment = Self.connectionWindowTarget - 65_535
        context.writeAndFlush(wrapOutboundOut(HTTP2Frame(streamID: .rootStream,
                                                         payload: .windowUpdate(windowSizeIncrement: increment))),
                              promise: nil)
        // Strong (see `IdleTimer`): `channelInactive` and `handlerRemoved` stop the clock.
        idle.start(on: context.eventLoop) {
            guard self.streams.isEmpty else { return }
            context.close(promise: nil)
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        idle.stop()
        self.context = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        idle.stop()
        let open = streams.values
        streams.removeAll()
        pool.connectionClosed(self)
        for stream in open { stream.closed(refused: false) }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        if let streamError = error as? NIOHTTP2Errors.StreamError {
            // A frame of ours that NIO refused for one stream: it sends no RST_STREAM for it,
            // so this side does, or the upstream would keep the stream counted.
            if let stream = streams.removeValue(forKey: streamError.streamID) {
                write(HTTP2Frame(streamID: streamError.streamID, payload: .rstStream(.internalError)))
                flush()
                stream.closed(refused: false)
            }
            return
        }
        if error is any NIOHTTP2Error {
            // A protocol error in what the upstream sent. One that concerns a single stream was
            // answered with RST_STREAM and ends that stream (`StreamClosedEvent`); one that
            // concerns the connection went out as GOAWAY, and the upstream closes. Either way no
            // new stream goes on this connection, and the others finish.
            pool.connectionDraining(self)
            return
        }
        // I/O and TLS errors: the connection is of no more use.
        context.close(promise: nil)
    }

    // MARK: Streams, for the pool and the streams

    /// A stream's head is going out: its id, or nil when this connection cannot open another.
    func open(_ stream: HTTP2UpstreamStream) -> HTTP2StreamID? {
        guard context != nil, !goAwayReceived, nextStreamNumber < Int(Int32.max) - 2 else { return nil }
        let id = HTTP2StreamID(nextStreamNumber)
        nextStreamNumber += 2
        if nextStreamNumber >= Int(Int32.max) - 2 {
            // The ids run out: no stream after this one (RFC 9113 5.1.1).
            pool.connectionDraining(self)
        }
        streams[id] = stream
        idle.noteActivity()
        return id
    }

    /// Both halves of the stream ended normally.
    func streamEnded(_ stream: HTTP2UpstreamStream) {
        guard let id = stream.id, streams[id] === stream else { return }
        streams.removeValue(forKey: id)
        idle.noteActivity()
    }

    func reset(_ stream: HTTP2UpstreamStream, id: HTTP2StreamID, code: HTTP2ErrorCode) {
        guard streams[id] === stream else { return }
        streams.removeValue(forKey: id)
        write(HTTP2Frame(streamID: id, payload: .rstStream(code)))
        flush()
    }

    /// The exchange gave the stream back: its slot on the connection is free.
    func streamReleased(_ stream: HTTP2UpstreamStream, retire: Bool) {
        if let id = stream.id, streams[id] === stream { streams.removeValue(forKey: id) }
        idle.noteActivity()
        pool.streamReleased(on: self, retire: retire)
    }

    func dataWritten(_ size: Int) {
        connectionSendWindow -= size
    }

    func write(_ frame: HTTP2Frame) {
        context?.write(wrapOutboundOut(frame), promise: nil)
    }

    func flush() {
        context?.flush()
    }

    func sendWindowUpdate(_ increment: Int, on id: HTTP2StreamID) {
        write(HTTP2Frame(streamID: id, payload: .windowUpdate(windowSizeIncrement: increment)))
        flush()
    }

    func close() {
        context?.close(promise: nil)
    }

    // MARK: Inbound frames

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        switch frame.payload {
        case .headers(let headers):
            guard let stream = streams[frame.streamID] else { return }
            noteTouched(stream)
            stream.receivedHeaders(headers)
        case .data(let payload):
            guard let stream = streams[frame.streamID] else { return }
            noteTouched(stream)
            if !stream.receivedData(payload) {
                reset(stream, id: frame.streamID, code: .flowControlError)
                stream.closed(refused: false)
            }
        case .rstStream(let code):
            guard let stream = streams.removeValue(forKey: frame.streamID) else { return }
            stream.closed(refused: code == .refusedStream)
        case .settings(.settings(let settings)):
            receivedSettings(settings)
        case .goAway(let lastStreamID, _, _):
            receivedGoAway(lastStreamID: lastStreamID)
        default:
            break  // Pings, window updates and priorities are the HTTP/2 handler's.
        }
    }

    private func noteTouched(_ stream: HTTP2UpstreamStream) {
        if !touched.contains(where: { $0 === stream }) { touched.append(stream) }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        // Each client gets what was forwarded to it in this burst in one flush.
        for stream in touched { stream.delegate?.upstreamReadComplete() }
        touched.removeAll(keepingCapacity: true)
        context.fireChannelReadComplete()
    }

    private func receivedSettings(_ settings: HTTP2Settings) {
        for setting in settings {
            switch setting.parameter {
            case .maxConcurrentStreams:
                peerMaxStreams = min(setting.value, Self.unlimitedStreams)
                if isReady { pool.maxStreamsChanged(on: self) }
            case .initialWindowSize:
                let delta = setting.value - peerInitialWindow
                peerInitialWindow = setting.value
                for stream in streams.values {
                    let wasWritable = stream.isWritable
                    stream.sendWindow += delta
                    stream.writabilityMayHaveChanged(wasWritable: wasWritable)
                }
            default:
                break
            }
        }
        if !isReady {
            isReady = true
            onReady?()
            onReady = nil
        }
    }

    private func receivedGoAway(lastStreamID: HTTP2StreamID) {
        goAwayReceived = true
        // First, so that the slots the refused streams free are not handed out on this connection.
        pool.connectionDraining(self)
        // Streams the upstream never started: safe to send again elsewhere.
        let refused = streams.filter { $0.key > lastStreamID }
        for (id, stream) in refused {
            streams.removeValue(forKey: id)
            stream.closed(refused: true)
        }
        if streams.isEmpty { context?.close(promise: nil) }
    }

    // MARK: Events

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        switch event {
        case let closed as StreamClosedEvent:
            // A stream NIO closed: normally both halves are done and it has left the table;
            // a reset or an error that is still in the table ends its exchange.
            if let stream = streams.removeValue(forKey: closed.streamID) {
                if closed.reason == nil && stream.responseEnded { return }
                stream.closed(refused: closed.reason == .refusedStream)
            }
        case let window as NIOHTTP2WindowUpdatedEvent:
            windowUpdated(window)
        default:
            context.fireUserInboundEventTriggered(event)
        }
    }

    private func windowUpdated(_ event: NIOHTTP2WindowUpdatedEvent) {
        if event.streamID == .rootStream {
            if let inbound = event.inboundWindowSize, inbound <= Self.connectionWindowTarget / 2 {
                sendWindowUpdate(Self.connectionWindowTarget - inbound, on: .rootStream)
            }
            if let outbound = event.outboundWindowSize {
                let wasShut = connectionSendWindow <= 0
                connectionSendWindow = outbound
                if wasShut && outbound > 0 {
                    for stream in streams.values { stream.writabilityMayHaveChanged(wasWritable: false) }
                }
            }
            return
        }
        guard let stream = streams[event.streamID], let outbound = event.outboundWindowSize else { return }
        let wasWritable = stream.isWritable
        stream.sendWindow = outbound
        stream.writabilityMayHaveChanged(wasWritable: wasWritable)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            for stream in streams.values { stream.writabilityMayHaveChanged(wasWritable: false) }
        }
        context.fireChannelWritabilityChanged()
    }
}

