import NIOCore
import NIOHTTP2
import PorticoHTTP1
import PorticoCore

/// The HTTP/2 side of a client connection: one handler behind `NIOHTTP2Handler` that keeps a
/// table of streams, each driving its own `ProxyHandler` through an `HTTP2ServerStream`.
///
/// swift-nio-http2's stream multiplexer gives every stream a child channel with a pipeline of
/// its own, a cost paid on every request; here a stream is a table entry. What the multiplexer
/// did is done here instead:
/// - **Flow control.** The connection window is returned as DATA arrives (every stream's own
///   window bounds what it may buffer). A stream's window is returned only as its upstream
///   takes the body (`HTTP2ServerStream.read`), never ahead of use.
/// - **Backpressure.** A stream is writable while the connection is and the client's window
///   for it is open; the upstream's reads wait otherwise.
/// - **Resets.** A client RST_STREAM ends its exchange. Envoy's premature-reset budget
///   (`PrematureResetBudget`) closes a connection whose client resets most streams it opens.
/// - **Idle and shutdown.** With no stream open for the idle timeout, or when the gateway
///   quiesces, a GOAWAY goes out; the connection closes once its streams are done.
final class HTTP2ServerConnection: ChannelDuplexHandler {
    typealias InboundIn = HTTP2Frame
    typealias OutboundIn = HTTP2Frame
    typealias OutboundOut = HTTP2Frame

    /// The connection-level window the client is kept supplied with (RFC 9113 6.9.2 default).
    static let connectionWindowTarget = 65_535

    private let loop: LoopContext
    private let info: DownstreamConnectionInfo
    private let streamWindow: Int
    private var context: ChannelHandlerContext?
    private(set) var streams: [HTTP2StreamID: HTTP2ServerStream] = [:]
    /// Streams that got frames in the current read burst.
    private var touched: [HTTP2ServerStream] = []
    private var highestStreamID = HTTP2StreamID.rootStream
    /// The client's SETTINGS_INITIAL_WINDOW_SIZE: each new stream's send window.
    private var clientInitialWindow = 65_535
    /// The connection's send window as last reported, less what was written since. DATA past
    /// it waits in `NIOHTTP2Handler` with no bound, so no stream is writable while it is shut.
    private(set) var connectionSendWindow = 65_535
    private var quiescing = false
    private var resetBudget = PrematureResetBudget()
    /// Idle means no stream open for the timeout. The clock notes when the table last became
    /// empty rather than scheduling a timer each time it does: with one request at a time that
    /// was a timer scheduled and cancelled per stream, five allocations each.
    private let idle: IdleTimer

    init(loop: LoopContext, connection: DownstreamConnectionInfo, idleTimeout: TimeAmount, streamWindow: Int = 65_535) {
        self.loop = loop
        self.info = connection
        self.idle = IdleTimer(timeout: idleTimeout)
        self.streamWindow = streamWindow
    }

    var eventLoop: EventLoop { loop.eventLoop }
    var allocator: ByteBufferAllocator { context?.channel.allocator ?? ByteBufferAllocator() }
    var isWritable: Bool { connectionSendWindow > 0 && (context?.channel.isWritable ?? false) }

    /// DATA written for a stream counts against the connection's window too.
    func dataWritten(_ size: Int) {
        connectionSendWindow -= size
    }

    // MARK: Lifecycle

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        if context.channel.isActive { startIdleClock(context) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        idle.stop()
        self.context = nil
    }

    func channelActive(context: ChannelHandlerContext) {
        startIdleClock(context)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        idle.stop()
        let open = streams.values
        streams.removeAll()
        for stream in open {
            stream.markReset()
            stream.proxy.clientLeft()
            stream.detach()
        }
        context.fireChannelInactive()
    }

    // MARK: Inbound frames

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        switch frame.payload {
        case .headers(let headers):
            receivedHeaders(headers, on: frame.streamID)
        case .data(let payload):
            receivedData(payload, on: frame.streamID)
        case .rstStream:
            clientReset(frame.streamID)
        case .settings(.settings(let settings)):
            for setting in settings where setting.parameter == .initialWindowSize {
                let delta = setting.value - clientInitialWindow
                clientInitialWindow = setting.value
                for stream in streams.values {
                    let wasWritable = stream.isWritable
                    stream.sendWindow += delta
                    if !wasWritable && stream.isWritable { stream.proxy.writabilityChanged() }
                }
            }
        default:
            break  // Pings, window updates, priorities and GOAWAY are the HTTP/2 handler's.
        }
    }

    private func receivedHeaders(_ headers: HTTP2Frame.FramePayload.Headers, on id: HTTP2StreamID) {
        if let stream = streams[id] {
            // A second header block: the request's trailers, which end it.
            do {
                let trailers = try RequestHead.http2Trailers(headers.headers)
                guard headers.endStream, stream.bodyLength.count(0, ending: true) else { return reset(stream, code: .protocolError) }
                stream.endRequest(trailers: trailers)
                noteTouched(stream)
            } catch {
                reset(stream, code: .protocolError)
            }
            return
        }
        guard !quiescing else {
            // After the GOAWAY: the client may retry it on a new connection (RFC 9113 6.8).
            writeFrame(HTTP2Frame(streamID: id, payload: .rstStream(.refusedStream)))
            context?.flush()
            return
        }
        resetBudget.streamOpened()
        if id > highestStreamID { highestStreamID = id }
        let head: RequestHead
        do {
            head = try RequestHead(http2Fields: headers.headers, endStream: headers.endStream)
        } catch {
            writeFrame(HTTP2Frame(streamID: id, payload: .rstStream(.protocolError)))
            context?.flush()
            return
        }
        // A length the FramingCheck will refuse is not counted: the request gets its 400.
        let declaredLength = (try? head.fields.declaredContentLength()) ?? nil
        if headers.endStream, let declaredLength, declaredLength != 0 {
            // RFC 9113 8.1.1: a body shorter than its `content-length` is malformed.
            writeFrame(HTTP2Frame(streamID: id, payload: .rstStream(.protocolError)))
            context?.flush()
            return
        }
        let stream = HTTP2ServerStream(id: id, connection: self, openedAt: NIODeadline.now().uptimeNanoseconds,
                                       receiveWindow: streamWindow, sendWindow: clientInitialWindow,
                                       declaredLength: declaredLength)
        stream.proxy = ProxyHandler(loop: loop, connection: info, stream: stream)
        streams[id] = stream
        stream.proxy.receive(.head(consume head))  // held once from here: see `startRequest`
        if headers.endStream, !stream.isReset { stream.endRequest(trailers: nil) }
        noteTouched(stream)
    }

    private func receivedData(_ payload: HTTP2Frame.FramePayload.Data, on id: HTTP2StreamID) {
        guard let stream = streams[id], case .byteBuffer(let buffer) = payload.data else { return }
        // Padding counts against the window, and so does the byte that gives its length.
        let flowControlled = buffer.readableBytes + (payload.paddingBytes.map { $0 + 1 } ?? 0)
        guard stream.bodyLength.count(buffer.readableBytes, ending: payload.endStream) else {
            return reset(stream, code: .protocolError)
        }
        guard stream.receivedData(buffer, flowControlledLength: flowControlled, endStream: payload.endStream) else {
            return reset(stream, code: .flowControlError)
        }
        noteTouched(stream)
    }

    private func noteTouched(_ stream: HTTP2ServerStream) {
        if !touched.contains(where: { $0 === stream }) { touched.append(stream) }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        // Each stream flushes its upstream once per burst, and reads on if it can.
        for stream in touched where !stream.isReset { stream.readBurstEnded() }
        touched.removeAll(keepingCapacity: true)
        context.fireChannelReadComplete()
    }

    /// The client reset a stream: its exchange ends. Most streams reset before their answer,
    /// at scale, is an attack (Rapid Reset), and closes the connection.
    private func clientReset(_ id: HTTP2StreamID) {
        guard let stream = streams.removeValue(forKey: id) else { return }
        stream.markReset()
        let premature = !stream.responseEnded
        stream.proxy.clientLeft()
        stream.detach()
        if premature,
           resetBudget.clientReset(openedAt: stream.openedAt, now: NIODeadline.now().uptimeNanoseconds) == .closeConnection {
            goAway(.enhanceYourCalm, close: true)
            return
        }
        streamsChanged()
    }

    // MARK: Events

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        switch event {
        case let closed as StreamClosedEvent:
            if let stream = streams.removeValue(forKey: closed.streamID) {
                stream.markReset()
                if !(stream.requestEnded && stream.responseEnded) { stream.proxy.clientLeft() }
                stream.detach()
                streamsChanged()
            }
        case let window as NIOHTTP2WindowUpdatedEvent:
            windowUpdated(window)
        case is NIOHTTP2StreamCreatedEvent:
            // Not used for the send window: it can come after writes were already counted.
            break
        case is ChannelShouldQuiesceEvent:
            quiescing = true
            goAway(.noError, close: streams.isEmpty)
        default:
            context.fireUserInboundEventTriggered(event)
        }
    }

    private func windowUpdated(_ event: NIOHTTP2WindowUpdatedEvent) {
        if event.streamID == .rootStream {
            // The connection's window comes back as soon as DATA is in: a stream's own window
            // is what holds back a body nobody reads yet.
            if let inbound = event.inboundWindowSize, inbound <= Self.connectionWindowTarget / 2 {
                sendWindowUpdate(Self.connectionWindowTarget - inbound, on: .rootStream)
            }
            if let outbound = event.outboundWindowSize {
                let wasShut = connectionSendWindow <= 0
                connectionSendWindow = outbound
                if wasShut && outbound > 0 {
                    for stream in streams.values where stream.isWritable { stream.proxy.writabilityChanged() }
                }
            }
            return
        }
        guard let stream = streams[event.streamID], let outbound = event.outboundWindowSize else { return }
        let wasWritable = stream.isWritable
        stream.sendWindow = outbound
        if !wasWritable && stream.isWritable { stream.proxy.writabilityChanged() }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            for stream in streams.values { stream.proxy.writabilityChanged() }
        }
        context.fireChannelWritabilityChanged()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        // A stream error: the HTTP/2 handler has reset the stream; its exchange ends. A
        // connection error went out as a GOAWAY, and `HTTP2ConnectionErrorGuard` closes.
        // A stream error on the way out (a frame NIO refuses in the stream's state) sends no
        // RST_STREAM of its own: the client would wait for ever. This side resets it.
        if let streamError = error as? NIOHTTP2Errors.StreamError, let stream = streams[streamError.streamID] {
            reset(stream, code: .internalError)
        }
    }

    // MARK: Writing, for the streams

    func write(_ frame: HTTP2Frame, promise: EventLoopPromise<Void>?) {
        guard let context else {
            promise?.fail(ChannelError.ioOnClosedChannel)
            return
        }
        context.write(wrapOutboundOut(frame), promise: promise)
    }

    private func writeFrame(_ frame: HTTP2Frame) {
        write(frame, promise: nil)
    }

    func flush() {
        context?.flush()
    }

    func sendWindowUpdate(_ increment: Int, on id: HTTP2StreamID) {
        writeFrame(HTTP2Frame(streamID: id, payload: .windowUpdate(windowSizeIncrement: increment)))
        context?.flush()
    }

    /// Resets a stream from this side. Its `ProxyHandler` hears of it on the next tick, not
    /// from inside the call that led here.
    func reset(_ stream: HTTP2ServerStream, code: HTTP2ErrorCode) {
        guard streams[stream.id] === stream else { return }
        streams.removeValue(forKey: stream.id)
        stream.markReset()
        writeFrame(HTTP2Frame(streamID: stream.id, payload: .rstStream(code)))
        context?.flush()
        eventLoop.assumeIsolated().execute {
            stream.proxy?.clientLeft()
            stream.detach()
        }
        streamsChanged()
    }

    // MARK: Idle and shutdown

    /// The stream table changed size: a quiescing connection closes when it is empty, an
    /// idle one starts its clock.
    private func streamsChanged() {
        guard streams.isEmpty else { return }
        if quiescing, let context {
            // After everything written so far has reached the socket (NIO fails writes still
            // pending at a close): the final GOAWAY, written behind the last stream's frames,
            // says when.
            let written = context.eventLoop.makePromise(of: Void.self)
            write(HTTP2Frame(streamID: .rootStream,
                             payload: .goAway(lastStreamID: highestStreamID, errorCode: .noError, opaqueData: nil)),
                  promise: written)
            context.flush()
            written.futureResult.assumeIsolated().whenComplete { _ in context.close(promise: nil) }
        } else if !quiescing {
            idle.noteActivity()
        }
    }

    /// The idle clock runs for the connection's life; it fires a timeout after the stream
    /// table last became empty (or after the connection began), and does nothing while a
    /// stream is open.
    private func startIdleClock(_ context: ChannelHandlerContext) {
        // Strong (see `IdleTimer`): `channelInactive` and `handlerRemoved` stop the clock,
        // which lets go of this closure.
        idle.start(on: context.eventLoop) {
            guard self.streams.isEmpty, !self.quiescing else { return }
            self.goAway(.noError, close: true)
        }
    }

    /// GOAWAY naming the last stream this side took on; the connection closes after it
    /// when asked to (the flush goes first: see `FlushCoalescingHandler`).
    private func goAway(_ code: HTTP2ErrorCode, close: Bool) {
        guard let context else { return }
        writeFrame(HTTP2Frame(streamID: .rootStream,
                              payload: .goAway(lastStreamID: highestStreamID, errorCode: code, opaqueData: nil)))
        context.flush()
        if close { context.close(promise: nil) }
    }
}
