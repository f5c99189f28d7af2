import NIOCore
import NIOSSL
import PorticoHTTP1

/// The HTTP/1.1 side of a client connection, between `HTTP1RequestReader` and the
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
/// - **No boxes.** Request and response parts are too large for `NIOAny`'s inline storage:
///   each one passed through the pipeline is boxed on the heap. So the `HTTP1RequestReader`
///   in front calls `receive`, the `ProxyHandler` behind gets its parts by `receive` too, and
///   its `ChannelDownstream` writes with `write(_:promise:)`, while all three are in the
///   pipeline. Everything else (errors, events, read-completes, flushes) takes the pipeline.
final class HTTP1ServerConnection: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = RequestPart
    typealias InboundOut = RequestPart
    typealias OutboundIn = ResponsePart
    typealias OutboundOut = IOData

    /// Pipelined request parts held before the connection stops reading.
    static let maxQueuedParts = 64

    /// What arrived behind a request whose response has not ended, in order.
    private enum Pending {
        case part(RequestPart)
        /// A later request could not be parsed: it is answered (400 or 431) in its turn.
        case parseError(HTTP1ParseError)
        /// The client shut its side (half-close): the connection closes after the answers.
        case inputClosed
    }

    /// A request was handed on and its response has not ended: the next request waits.
    private var awaitingResponse = false
    /// The request handed on has ended (its `.end` went by).
    private var requestEnded = true
    private var queued: [Pending] = []
    private var drainScheduled = false
    /// A later request failed to parse: the reader parses nothing after it.
    private var parseErrorQueued = false
    /// The response being written says `connection: close`: no request after it is served
    /// (RFC 9112 9.6), and the `ProxyHandler` closes once it is written.
    private var lastResponse = false
    /// The client shut its side; a tunnel that replaces this handler must hear of it.
    private(set) var inputClosed = false
    private var closing = false
    private var readsHeld = false
    private var readPending = false

    /// A final response head was written and its end was not.
    private var responseInProgress = false
    /// A response head could not be sent; its body and end are refused too.
    private var droppingResponse = false
    private var framing = HTTP1BodyFraming.none
    /// The request being answered was a HEAD: its response has framing headers but no body.
    private var answeringHEAD = false
    /// The response's body ends with the connection (no length, HTTP/1.0): close after it.
    private var closeAfterResponseEnd = false
    private var out = OutboundGatherer()

    /// The gateway is shutting down: the response in progress says `connection: close`, and
    /// the connection closes after it.
    private var quiescing = false
    private let idle: IdleTimer
    private var context: ChannelHandlerContext?
    /// The `ProxyHandler` right behind, called directly (see the type's comment). Strong: the
    /// pair lets go of each other when this handler leaves the pipeline.
    private var proxy: ProxyHandler?

    init(idleTimeout: TimeAmount) {
        self.idle = IdleTimer(timeout: idleTimeout)
    }

    // MARK: Lifecycle

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        // The reader sits right in front wherever both are (`ServerPipeline.addHTTP1Handlers`,
        // the admin server).
        if let reader = try? context.pipeline.syncOperations.handler(type: HTTP1RequestReader.self),
           reader.connection == nil {
            reader.connection = self
        }
        if context.channel.isActive { idle.start(firingEventsFrom: context) }
    }

    /// Whether the handler is in its pipeline, so that the direct calls can be made.
    var isAttached: Bool { context != nil }

    /// The `ProxyHandler` added right behind this handler: its request parts go to it directly.
    func attach(_ proxy: ProxyHandler) {
        self.proxy = proxy
    }

    func channelActive(context: ChannelHandlerContext) {
        idle.start(firingEventsFrom: context)
        context.fireChannelActive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        proxy = nil
        idle.stop()
        // Leaving for an upgrade: what was gathered (the 101) must still go out, ahead of
        // whatever the new protocol writes.
        out.write(to: context)
        context.flush()
    }

    func channelInactive(context: ChannelHandlerContext) {
        idle.stop()
        queued.removeAll()
        context.fireChannelInactive()
    }

    // MARK: Inbound

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        receive(context, unwrapInboundIn(data))
    }

    /// A request part from the reader in front, by a direct call.
    func receive(_ part: consuming RequestPart) {
        guard let context else { return }
        receive(context, consume part)
    }

    private func receive(_ context: ChannelHandlerContext, _ part: consuming RequestPart) {
        idle.noteActivity()
        if !queued.isEmpty || (awaitingResponse && part.isHead) {
            enqueue(.part(consume part))
            return
        }
        deliver(context, consume part)
    }

    private func enqueue(_ pending: Pending) {
        queued.append(pending)
        if queued.count >= Self.maxQueuedParts { readsHeld = true }
    }

    private func deliver(_ context: ChannelHandlerContext, _ part: consuming RequestPart) {
        switch part {
        case .head(let head):
            awaitingResponse = true
            requestEnded = false
            answeringHEAD = head.method == "HEAD"
        case .body:
            break
        case .end:
            requestEnded = true
        }
        if let proxy, proxy.context != nil {
            proxy.receive(consume part)
        } else {
            context.fireChannelRead(wrapInboundOut(consume part))
        }
    }

    /// Hands on what waited, up to the next request that must wait again. While a response
    /// is pending only the rest of its own request may pass.
    private func drainQueue(_ context: ChannelHandlerContext) {
        drainScheduled = false
        var delivered = false
        while let next = queued.first, !quiescing, context.channel.isActive {
            if awaitingResponse {
                switch next {
                case .part(let part) where !part.isHead:
                    break  // The rest of the request being answered.
                case .parseError where !requestEnded:
                    break  // That request broke off (a bad chunk in its body).
                default:
                    return finishDrain(context, delivered: delivered)
                }
            }
            // Taken off before it is handed on: handing it on may close the connection,
            // which empties the queue.
            queued.removeFirst()
            switch next {
            case .part(let part):
                deliver(context, part)
                delivered = true
            case .parseError(let error) where awaitingResponse:
                if delivered { context.fireChannelReadComplete() }
                requestBrokeOff(context, error)
                return
            case .parseError(let error):
                answerParseError(context, error)
                return
            case .inputClosed:
                closeAfterWrites(context)
                return
            }
        }
        finishDrain(context, delivered: delivered)
    }

    private func finishDrain(_ context: ChannelHandlerContext, delivered: Bool) {
        if delivered { context.fireChannelReadComplete() }
        if readsHeld && !parseErrorQueued && queued.count < Self.maxQueuedParts / 2 {
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
        if let event = event as? ChannelEvent, event == .inputClosed {
            // A client may send its request and shut its side; it still gets its answers.
            inputClosed = true
            if awaitingResponse || !queued.isEmpty {
                enqueue(.inputClosed)
            } else {
                closeAfterWrites(context)
            }
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        if let parserError = error as? HTTP1ParseError {
            if !queued.isEmpty || (awaitingResponse && requestEnded) {
                // The error is a later request's: the ones before it are answered first.
                enqueue(.parseError(parserError))
                parseErrorQueued = true
                readsHeld = true
                return
            }
            if !awaitingResponse {
                if requestEnded {
                    answerParseError(context, parserError)
                } else {
                    // Its answer went out already (the upstream answered early); the rest of
                    // the request broke off. A second answer would be a stray: just close.
                    closeAfterWrites(context)
                }
                return
            }
            requestBrokeOff(context, parserError)
            return
        } else if case NIOSSLError.uncleanShutdown = error, requestEnded {
            // A TLS client that shut its side without close_notify, between requests or
            // waiting for an answer: the input-closed event that follows deals with it.
            return
        }
        context.fireErrorCaught(error)
    }

    /// The request being served broke off (a bad chunk in its body): it is answered if its
    /// answer has not begun, and the `ProxyHandler` hears of it and ends the exchange.
    private func requestBrokeOff(_ context: ChannelHandlerContext, _ error: HTTP1ParseError) {
        if !responseInProgress { writeParseErrorResponse(context, error, promise: nil) }
        context.fireErrorCaught(error)
    }

    /// Answers with the status the parser chose (400, 431 or 501), and closes once the answer
    /// is written: nothing after the offending bytes was parsed.
    private func answerParseError(_ context: ChannelHandlerContext, _ error: HTTP1ParseError) {
        queued.removeAll()
        guard !closing, context.channel.isActive else { return }
        closing = true
        let written = context.eventLoop.makePromise(of: Void.self)
        writeParseErrorResponse(context, error, promise: written)
        // Not a request yet, but an answer the gateway gave: the metrics and the log hear of it.
        proxy?.parseErrorAnswered(status: error.status)
        written.futureResult.assumeIsolated().whenComplete { _ in context.close(promise: nil) }
    }

    private func writeParseErrorResponse(_ context: ChannelHandlerContext, _ error: HTTP1ParseError,
                                         promise: EventLoopPromise<Void>?) {
        out.prepare(context.channel.allocator)
        out.gathered!.writeHTTP1StatusLine(ResponseHead(status: error.status))
        out.gathered!.writeStaticString("connection: close\r\ncontent-length: 0\r\n\r\n")
        out.write(to: context, promise: promise)
        context.flush()
    }

    /// Closes once everything written so far has reached the socket: NIO fails writes still
    /// pending when a channel closes.
    private func closeAfterWrites(_ context: ChannelHandlerContext) {
        queued.removeAll()
        guard !closing, context.channel.isActive else { return }
        closing = true
        let written = context.eventLoop.makePromise(of: Void.self)
        out.write(to: context, promise: written)
        context.flush()
        written.futureResult.assumeIsolated().whenComplete { _ in context.close(promise: nil) }
    }

    // MARK: Outbound

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        write(context, unwrapOutboundIn(data), promise: promise)
    }

    /// A response part from the `ProxyHandler` behind, by a direct call; as if it had come
    /// down the pipeline.
    func write(_ part: ResponsePart, promise: EventLoopPromise<Void>?) {
        guard let context else {
            promise?.fail(ChannelError.ioOnClosedChannel)
            return
        }
        write(context, part, promise: promise)
    }

    private func write(_ context: ChannelHandlerContext, _ part: ResponsePart, promise: EventLoopPromise<Void>?) {
        idle.noteActivity()
        if droppingResponse {
            // The rest of a response whose head could not be sent: the connection is closing.
            if case .end = part { droppingResponse = false }
            promise?.fail(InvalidOutboundHeader())
            return
        }
        switch part {
        case .head(var head):
            let isInterim = head.isInformational
            if !isInterim {
                if quiescing { head.fields.replaceOrAppend(name: "connection", value: "close") }
                lastResponse = quiescing || head.fields.containsToken("close", inFieldNamed: "connection")
                framing = head.fields.frameForSending(HTTP1BodyExpectation(responseStatus: head.status), version: head.version)
                if answeringHEAD { framing = .none }
                if framing == .untilClose && !lastResponse {
                    // A body without a length (to an HTTP/1.0 client that asked for keep-alive)
                    // ends only with the connection: say so, and close after it.
                    head.fields.replaceOrAppend(name: "connection", value: "close")
                    lastResponse = true
                    closeAfterResponseEnd = true
                }
                responseInProgress = true
            }
            out.prepare(context.channel.allocator)
            let start = out.gathered!.writerIndex
            out.gathered!.writeHTTP1StatusLine(head)
            guard out.gathered!.writeHTTP1HeaderSection(head.fields) else {
                out.gathered!.moveWriterIndex(to: start)
                droppingResponse = !isInterim
                responseInProgress = false
                promise?.fail(InvalidOutboundHeader())
                context.fireErrorCaught(InvalidOutboundHeader())
                return
            }
        case .body(let body):
            guard framing != .none else {
                // A response to HEAD, a 204 or a 304 carries no body (RFC 9112 6.3).
                promise?.fail(ResponseBodyNotAllowed())
                return
            }
            out.writeBody(.byteBuffer(body), chunked: framing == .chunked, to: context, promise: promise)
            return
        case .end(let trailers):
            out.gatherEnd(trailers: trailers, chunked: framing == .chunked, allocator: context.channel.allocator)
            responseEnded(context, promise: promise)
            return
        }
        if promise != nil || out.isOverLimit { out.write(to: context, promise: promise) }
    }

    func flush(context: ChannelHandlerContext) {
        out.write(to: context)
        context.flush()
    }

    private func responseEnded(_ context: ChannelHandlerContext, promise: EventLoopPromise<Void>?) {
        responseInProgress = false
        framing = .none
        awaitingResponse = false
        if quiescing || closeAfterResponseEnd {
            let written = promise ?? context.eventLoop.makePromise()
            out.write(to: context, promise: written)
            context.flush()
            written.futureResult.assumeIsolated().whenComplete { _ in context.close(promise: nil) }
            return
        }
        if promise != nil { out.write(to: context, promise: promise) }
        if lastResponse {
            // Nothing after a `connection: close` answer is served; the `ProxyHandler` closes.
            queued.removeAll()
            readsHeld = true
            return
        }
        if !queued.isEmpty && !drainScheduled {
            // Not now: the `ProxyHandler` is inside its own write, and the next request must
            // not start inside the end of the last one.
            drainScheduled = true
            context.eventLoop.assumeIsolated().execute { [self] in drainQueue(context) }
        }
    }
}

extension RequestPart {
    fileprivate var isHead: Bool {
        if case .head = self { return true }
        return false
    }
}
