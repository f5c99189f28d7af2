import NIOCore
import NIOHTTP1

/// The HTTP/1.1 side of a client connection, between NIO's request decoder and the
/// `ProxyHandler`: it writes responses to the wire, hands requests on one at a time, answers
/// what the parser refused, and tells the `ProxyHandler` when the connection went idle.
///
/// NIO's own server pipeline spreads this over five handlers (response encoder, pipelining
/// helper, header validator, error handler and an idle handler), and every request part and
/// every write passed through each of them. Two things are also cheaper here:
/// - **Pipelining.** A request that arrives while the previous one is still being answered
///   waits here. NIO's helper instead stops reading while any response is pending and starts
///   again after it, which costs two `epoll_ctl` calls on every request, pipelined or not.
///   Reads stop here only once `maxQueuedParts` parts are waiting.
/// - **Writes.** A response's head, its small body parts and its end are gathered into one
///   buffer and leave in one `write` at the flush, instead of a `writev` of three to five.
final class HTTP1ServerConnection: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = IOData

    /// Pipelined request parts held before the connection stops reading.
    static let maxQueuedParts = 64

    /// A request was handed on and its response has not ended: the next request waits.
    private var awaitingResponse = false
    /// Parts of requests that arrived while `awaitingResponse`, in order.
    private var queued: [HTTPServerRequestPart] = []
    private var drainScheduled = false
    private var readsHeld = false
    private var readPending = false

    /// A final response head was written and its end was not.
    private var responseInProgress = false
    private var framing = HTTP1BodyFraming.none
    /// The request being answered was a HEAD: its response has framing headers but no body.
    private var answeringHEAD = false
    private var out = OutboundGatherer()

    /// The gateway is shutting down: the response in progress says `connection: close`, and
    /// the connection closes after it.
    private var quiescing = false
    private var idle: IdleTimer

    init(idleTimeout: TimeAmount) {
        self.idle = IdleTimer(timeout: idleTimeout)
    }

    // MARK: Lifecycle

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { startIdleTimer(context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        startIdleTimer(context)
        context.fireChannelActive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        idle.stop()
        // Leaving for an upgrade: what was gathered (the 101) must still go out, ahead of
        // whatever the new protocol writes.
        if let pending = out.take() {
            context.writeAndFlush(wrapOutboundOut(.byteBuffer(pending)), promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        idle.stop()
        queued.removeAll()
        context.fireChannelInactive()
    }

    // MARK: Inbound

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        idle.noteActivity()
        let part = unwrapInboundIn(data)
        if !queued.isEmpty || (awaitingResponse && part.isHead) {
            queued.append(part)
            if queued.count >= Self.maxQueuedParts { readsHeld = true }
            return
        }
        deliver(context, part)
    }

    private func deliver(_ context: ChannelHandlerContext, _ part: HTTPServerRequestPart) {
        if case .head(let head) = part {
            awaitingResponse = true
            answeringHEAD = head.method == .HEAD
        }
        context.fireChannelRead(wrapInboundOut(part))
    }

    /// Hands on the requests that waited, up to the next one that must wait again.
    private func drainQueue(_ context: ChannelHandlerContext) {
        drainScheduled = false
        guard !queued.isEmpty, !quiescing else { return }
        var delivered = 0
        while delivered < queued.count {
            if awaitingResponse && queued[delivered].isHead { break }
            deliver(context, queued[delivered])
            delivered += 1
        }
        queued.removeFirst(delivered)
        context.fireChannelReadComplete()
        if readsHeld && queued.count < Self.maxQueuedParts / 2 {
            readsHeld = false
            if readPending {
                readPending = false
                context.read()
            }
        }
    }

    func read(context: ChannelHandlerContext) {
        if readsHeld {
            readPending = true
            return
        }
        context.read()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is ChannelShouldQuiesceEvent {
            quiescing = true
            queued.removeAll()
            if !awaitingResponse { context.close(promise: nil) }
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        if let parserError = error as? HTTPParserError {
            // The decoder closes the connection right after this returns, so the answer goes
            // now, and only if no other response has begun. NIO's error handler answers every
            // parse error with 400; a header section over the limit deserves 431.
            queued.removeAll()
            if !responseInProgress {
                let status: HTTPResponseStatus = parserError == .headerOverflow ? .requestHeaderFieldsTooLarge : .badRequest
                out.prepare(context.channel.allocator)
                out.gathered!.writeHTTP1StatusLine(version: .http1_1, status: status)
                out.gathered!.writeStaticString("connection: close\r\ncontent-length: 0\r\n\r\n")
                flushGathered(context)
                context.flush()
            }
        }
        context.fireErrorCaught(error)
    }

    // MARK: Outbound

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        idle.noteActivity()
        switch unwrapOutboundIn(data) {
        case .head(var head):
            let code = head.status.code
            let isInterim = code >= 100 && code < 200 && code != 101
            if !isInterim {
                if quiescing { head.headers.replaceOrAdd(name: "connection", value: "close") }
                framing = head.headers.frameForSending(HTTP1BodyExpectation(responseStatus: head.status), version: head.version)
                if answeringHEAD { framing = .none }
                responseInProgress = true
            }
            out.prepare(context.channel.allocator)
            let start = out.gathered!.writerIndex
            out.gathered!.writeHTTP1StatusLine(version: head.version, status: head.status)
            guard out.gathered!.writeHTTP1HeaderSection(head.headers) else {
                out.gathered!.moveWriterIndex(to: start)
                promise?.fail(InvalidOutboundHeader())
                context.fireErrorCaught(InvalidOutboundHeader())
                return
            }
        case .body(let body):
            guard framing != .none else {
                // A response to HEAD, a 204 or a 304 carries no body (RFC 9112 6.3).
                promise?.fail(NIOHTTPResponseEncoderError.responseBodyNotAllowed)
                return
            }
            let size = body.readableBytes
            guard size > 0 else { break }
            if framing == .chunked {
                out.prepare(context.channel.allocator)
                out.gathered!.writeChunkSizeLine(size)
            }
            if case .byteBuffer(var buffer) = body, size <= OutboundGatherer.copyLimit {
                out.prepare(context.channel.allocator)
                out.gathered!.writeBuffer(&buffer)
            } else {
                flushGathered(context)
                context.write(wrapOutboundOut(body), promise: promise)
                if framing != .chunked { return }
                out.prepare(context.channel.allocator)
                out.gathered!.writeStaticString("\r\n")
                if out.isOverLimit { flushGathered(context) }
                return
            }
            if framing == .chunked { out.gathered!.writeStaticString("\r\n") }
        case .end(let trailers):
            if framing == .chunked {
                out.prepare(context.channel.allocator)
                if let trailers, !trailers.isEmpty {
                    out.gathered!.writeStaticString("0\r\n")
                    if !out.gathered!.writeHTTP1HeaderSection(trailers) {
                        out.gathered!.writeStaticString("\r\n")  // Trailers that cannot be sent are dropped.
                    }
                } else {
                    out.gathered!.writeStaticString("0\r\n\r\n")
                }
            }
            responseEnded(context, promise: promise)
            return
        }
        if promise != nil || out.isOverLimit { flushGathered(context, promise: promise) }
    }

    func flush(context: ChannelHandlerContext) {
        flushGathered(context)
        context.flush()
    }

    /// Passes what was gathered on to the channel (it goes to the socket at the next flush).
    private func flushGathered(_ context: ChannelHandlerContext, promise: EventLoopPromise<Void>? = nil) {
        if let pending = out.take() {
            context.write(wrapOutboundOut(.byteBuffer(pending)), promise: promise)
        } else if let promise {
            // Nothing of this part to write (an empty body part, an unchunked end): complete
            // the promise behind what is already queued, in order.
            context.write(wrapOutboundOut(.byteBuffer(context.channel.allocator.buffer(capacity: 0))), promise: promise)
        }
    }

    private func responseEnded(_ context: ChannelHandlerContext, promise: EventLoopPromise<Void>?) {
        responseInProgress = false
        framing = .none
        awaitingResponse = false
        if quiescing {
            let written = promise ?? context.eventLoop.makePromise()
            flushGathered(context, promise: written)
            context.flush()
            written.futureResult.assumeIsolated().whenComplete { _ in context.close(promise: nil) }
            return
        }
        if promise != nil { flushGathered(context, promise: promise) }
        if !queued.isEmpty && !drainScheduled {
            // Not now: the `ProxyHandler` is inside its own write, and the next request must
            // not start inside the end of the last one.
            drainScheduled = true
            context.eventLoop.assumeIsolated().execute { [self] in drainQueue(context) }
        }
    }

    // MARK: Idle

    private func startIdleTimer(_ context: ChannelHandlerContext) {
        idle.start(on: context.eventLoop) { [weak self] in self?.idleTimerFired(context) }
    }

    private func idleTimerFired(_ context: ChannelHandlerContext) {
        guard context.channel.isActive else { return }
        if idle.fired(on: context.eventLoop, fire: { [weak self] in self?.idleTimerFired(context) }) {
            context.fireUserInboundEventTriggered(IdleStateHandler.IdleStateEvent.all)
        }
    }
}

extension HTTPServerRequestPart {
    fileprivate var isHead: Bool {
        if case .head = self { return true }
        return false
    }
}
