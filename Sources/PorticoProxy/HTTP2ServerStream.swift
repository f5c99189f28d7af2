import NIOCore
import NIOHPACK
import NIOHTTP2
import PorticoHTTP1
import PorticoCore

/// One client stream of an HTTP/2 connection, as its `ProxyHandler` sees it: no channel, no
/// pipeline, just the frames it becomes on the connection (`HTTP2ServerConnection`).
///
/// It converts the handler's HTTP/1-style response parts to HEADERS and DATA frames, returns
/// flow-control credit for the request body only as the handler reads on (that is, as the
/// upstream takes it), and tells the handler whether the client can take more of the answer:
/// the connection's buffer and the stream's send window both count.
final class HTTP2ServerStream: ProxyDownstream {
    let id: HTTP2StreamID
    /// Unowned: the connection keeps its streams in its table and drops them when they close.
    private unowned let connection: HTTP2ServerConnection
    /// Strong, and the proxy's `downstream` is this stream: the pair is broken by `detach()`
    /// when the stream leaves the connection's table.
    var proxy: ProxyHandler!
    /// When the client opened it (monotonic nanoseconds), for the premature-reset budget.
    let openedAt: UInt64
    var credit: InboundFlowCredit
    /// The send window as last reported, less what was written since: at zero or below, the
    /// HTTP/2 handler is holding DATA for the client's WINDOW_UPDATE.
    var sendWindow: Int
    /// Request body bytes handed to the proxy since credit was last settled.
    private var unsettled = 0
    private(set) var requestEnded = false
    private(set) var responseEnded = false
    private(set) var isReset = false
    /// The last body part, held until the next part or flush: when the end comes next, it
    /// goes out as the DATA frame that carries END_STREAM, rather than an empty DATA frame
    /// behind it. One frame fewer per response, and one fewer boxed write down the pipeline.
    private var heldData: ByteBuffer?
    /// The response head, held the same way: an answer with no body and no trailers goes out
    /// as one HEADERS frame that ends the stream. gRPC's trailers-only answers (an error's
    /// `grpc-status` in the head) must arrive so: a gRPC client takes a head followed by an
    /// empty DATA frame for a stream that ended without its status.
    private var heldHead: HPACKHeaders?
    /// The request body against its `content-length`: NIO's check is off
    /// (`ServerPipeline.configureHTTP2`), and the connection counts with this.
    var bodyLength: BodyLengthCheck

    init(id: HTTP2StreamID, connection: HTTP2ServerConnection, openedAt: UInt64, receiveWindow: Int, sendWindow: Int,
         declaredLength: Int? = nil) {
        self.id = id
        self.connection = connection
        self.openedAt = openedAt
        self.credit = InboundFlowCredit(target: receiveWindow)
        self.sendWindow = sendWindow
        self.bodyLength = BodyLengthCheck(declared: declaredLength)
    }

    var eventLoop: EventLoop { connection.eventLoop }
    var allocator: ByteBufferAllocator { connection.allocator }
    var isWritable: Bool { !isReset && sendWindow > 0 && connection.isWritable }

    /// Breaks the stream–proxy cycle once the stream has left the connection's table.
    func detach() {
        proxy?.downstream = nil
        proxy = nil
    }

    // MARK: Request side (from the connection)

    /// DATA arrived: counted against the stream's window, then handed to the proxy.
    /// Returns false when the client overran the window it was given.
    func receivedData(_ buffer: ByteBuffer, flowControlledLength: Int, endStream: Bool) -> Bool {
        guard credit.received(flowControlledLength) == .accepted else { return false }
        // Padding is flow-controlled but never reaches the proxy: settled at once.
        unsettled += buffer.readableBytes
        if flowControlledLength > buffer.readableBytes, let increment = credit.consumed(flowControlledLength - buffer.readableBytes) {
            connection.sendWindowUpdate(increment, on: id)
        }
        if buffer.readableBytes > 0 { proxy.receive(.body(buffer)) }
        if endStream { endRequest(trailers: nil) }
        return true
    }

    func endRequest(trailers: HTTPFieldList?) {
        requestEnded = true
        proxy.receive(.end(trailers))
    }

    /// The end of a read burst: the proxy flushes its upstream, and takes more of the body
    /// unless its upstream cannot.
    func readBurstEnded() {
        proxy.readComplete()
        if unsettled > 0, !proxy.holdsReads() { read() }
    }

    // MARK: ProxyDownstream

    /// The proxy reads on: what it was handed is consumed, and the client gets that much
    /// window back once half the window is used (never ahead of use).
    func read() {
        guard unsettled > 0, !isReset else { return }
        let consumed = unsettled
        unsettled = 0
        if let increment = credit.consumed(consumed), !requestEnded {
            connection.sendWindowUpdate(increment, on: id)
        }
    }

    func write(_ part: ResponsePart, promise: EventLoopPromise<Void>?) {
        guard !isReset, !responseEnded else {
            promise?.fail(ChannelError.ioOnClosedChannel)
            return
        }
        switch part {
        case .head(let head):
            guard head.fields.isSendable else { return refuse(promise) }
            writeHeldData()
            let fields = HPACKHeaders(response: head)
            if let promise {
                connection.write(HTTP2Frame(streamID: id, payload: .headers(.init(headers: fields))), promise: promise)
            } else {
                heldHead = fields
            }
        case .body(let data):
            writeHeldData()
            sendWindow -= data.readableBytes
            connection.dataWritten(data.readableBytes)
            if let promise {
                writeData(data, endStream: false, promise: promise)
            } else {
                heldData = data
            }
        case .end(let trailers):
            // Before the stream counts as answered: the reset must be INTERNAL_ERROR, not the
            // NO_ERROR of an answer complete before its request.
            if let trailers, !trailers.isEmpty, !trailers.isSendable { return refuse(promise) }
            responseEnded = true
            // The answer is complete before the request: once it is out, the client is asked to
            // stop sending the rest (RST_STREAM NO_ERROR, RFC 9113 8.1). Not before: a reset
            // drops the DATA still queued for the stream.
            let promise = requestEnded ? promise : endBeforeRequest(promise)
            if let head = heldHead, heldData == nil, trailers?.isEmpty ?? true {
                heldHead = nil
                connection.write(HTTP2Frame(streamID: id, payload: .headers(.init(headers: head, endStream: true))),
                                 promise: promise)
            } else if let trailers, !trailers.isEmpty {
                writeHeldData()
                let fields = HPACKHeaders(trailers: trailers)
                connection.write(HTTP2Frame(streamID: id, payload: .headers(.init(headers: fields, endStream: true))),
                                 promise: promise)
            } else if let last = heldData {
                heldData = nil
                writeData(last, endStream: true, promise: promise)
            } else {
                writeData(connection.allocator.buffer(capacity: 0), endStream: true, promise: promise)
            }
        }
    }

    /// A field that cannot go out as it is (a name that is no token, a control byte in a
    /// value): the stream is reset, as the HTTP/1 writer closes the connection. Portico's
    /// sources of fields check them first; this is the last guard, where NIO's was.
    private func refuse(_ promise: EventLoopPromise<Void>?) {
        promise?.fail(HTTP2UnsendableField())
        connection.reset(self, code: .internalError)
    }

    private func writeHeldData() {
        if let head = heldHead {
            heldHead = nil
            connection.write(HTTP2Frame(streamID: id, payload: .headers(.init(headers: head))), promise: nil)
        }
        guard let data = heldData else { return }
        heldData = nil
        writeData(data, endStream: false, promise: nil)
    }

    private func writeData(_ data: ByteBuffer, endStream: Bool, promise: EventLoopPromise<Void>?) {
        connection.write(HTTP2Frame(streamID: id, payload: .data(.init(data: .byteBuffer(data), endStream: endStream))),
                         promise: promise)
    }

    private func endBeforeRequest(_ promise: EventLoopPromise<Void>?) -> EventLoopPromise<Void> {
        let written = connection.eventLoop.makePromise(of: Void.self)
        written.futureResult.assumeIsolated().whenComplete { [self] result in
            promise?.completeWith(result)
            if !requestEnded { connection.reset(self, code: .noError) }
        }
        return written
    }

    func flush() {
        if !isReset { writeHeldData() }
        // Even when the stream is gone: a HEADERS frame that ends it (trailers, or an answer
        // with no body) closes the stream inside the write, before this flush, and it must
        // still reach the socket.
        connection.flush()
    }

    /// The exchange ends abruptly: the stream is reset, as a closed child channel would be.
    func close() {
        guard !isReset else { return }
        if responseEnded && requestEnded { return }
        // After a complete answer the rest of the request is not wanted: NO_ERROR (RFC 9113 8.1).
        connection.reset(self, code: responseEnded ? .noError : .cancel)
    }

    /// The stream is gone (reset either way, or the connection closed): nothing more is written.
    func markReset() {
        isReset = true
        heldHead = nil
        heldData = nil
    }
}

/// A response field the stream refused to write (see `HTTP2ServerStream.refuse`).
struct HTTP2UnsendableField: Error {}

extension HPACKHeaders {
    /// The headers that cannot cross into HTTP/2 (RFC 9113 8.2.2).
    static func isConnectionSpecific(_ name: String) -> Bool {
        switch name.utf8.count {
        case 7: return name.equalsASCIICaseInsensitive("upgrade")
        case 10: return name.equalsASCIICaseInsensitive("connection") || name.equalsASCIICaseInsensitive("keep-alive")
        case 16: return name.equalsASCIICaseInsensitive("proxy-connection")
        case 17: return name.equalsASCIICaseInsensitive("transfer-encoding")
        default: return false
        }
    }

    init(response head: ResponseHead) {
        self.init()
        reserveCapacity(head.fields.count + 1)
        let status = head.status
        add(name: ":status", value: String(status))
        // A 1xx or 204 has no content (RFC 9110 8.6): a Content-Length an upstream put on one
        // would have the client wait for a body that never comes.
        appendRegular(head.fields, dropContentLength: status < 200 || status == 204)
    }

    init(trailers: HTTPFieldList) {
        self.init()
        reserveCapacity(trailers.count)
        appendRegular(trailers)
    }

    /// HTTP/2 field names are lowercase (RFC 9113 8.2.1); names from HTTP/1 upstreams often
    /// are not.
    private mutating func appendRegular(_ fields: HTTPFieldList, dropContentLength: Bool = false) {
        for index in 0..<fields.count {
            let field = fields[index]
            if Self.isConnectionSpecific(field) { continue }
            if dropContentLength && field.hasName("content-length") { continue }
            add(name: field.lowercasedName, value: field.value)
        }
    }

    /// The same for a field of a list (the HTTP/2 upstream's request head uses it too).
    static func isConnectionSpecific(_ field: HTTPField) -> Bool {
        switch field.nameLength {
        case 7: return field.hasName("upgrade")
        case 10: return field.hasName("connection") || field.hasName("keep-alive")
        case 16: return field.hasName("proxy-connection")
        case 17: return field.hasName("transfer-encoding")
        default: return false
        }
    }
}
