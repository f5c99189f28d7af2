import NIOCore
import NIOHPACK
import NIOHTTP2
import PorticoCore
import PorticoHTTP1

/// One request's stream on a shared HTTP/2 upstream connection, as the exchange sees it: a
/// `LeasedUpstream` like an HTTP/1.1 connection, with no channel of its own.
///
/// It turns the request's parts into HEADERS and DATA frames and the upstream's frames back
/// into response parts. Flow control does the backpressure in both directions:
/// - the request body waits while the stream's or the connection's send window is shut (the
///   exchange holds its client's reads while `isWritable` is false);
/// - the response body's window is given back to the upstream only as the client takes it
///   (`resumeReading`), so a slow client slows its own stream, not the connection's others.
final class HTTP2UpstreamStream: LeasedUpstream {
    /// Strong: the connection keeps its open streams in a table and drops them as they end,
    /// which ends the cycle.
    let connection: HTTP2UpstreamConnection
    /// Assigned as the head goes out: ids must rise in the order streams open (RFC 9113 5.1.1).
    private(set) var id: HTTP2StreamID?
    var delegate: UpstreamResponseDelegate?
    private var credit: InboundFlowCredit
    /// The send window as last reported, less what was written since.
    var sendWindow: Int
    /// Response body bytes handed on while the client could not take more.
    private var unsettled = 0
    private var heldHead: HPACKHeaders?
    private var heldData: ByteBuffer?
    private(set) var requestEnded = false
    private(set) var responseStarted = false
    private(set) var responseEnded = false
    /// Reset either way, or the connection went: nothing more is written.
    private(set) var isClosed = false
    /// Given back to the pool (once).
    private var released = false
    /// The request is a HEAD: its answer has no body, whatever its `content-length` says.
    private var isHeadRequest = false
    /// The answer's body against its `content-length` (NIO's check is off: see
    /// `HTTP2UpstreamPool`). A body that ends short of it ends as a reset, not as a whole
    /// answer; one that runs past it is cut at the frame that does.
    private var bodyLength = BodyLengthCheck(declared: nil)

    init(connection: HTTP2UpstreamConnection, receiveWindow: Int, sendWindow: Int) {
        self.connection = connection
        self.credit = InboundFlowCredit(target: receiveWindow)
        self.sendWindow = sendWindow
    }

    // MARK: LeasedUpstream

    var isWritable: Bool { !isClosed && sendWindow > 0 && connection.isWritable }
    var requestsServed: Int {
        get { connection.requestsServed }
        set { connection.requestsServed = newValue }
    }
    /// Streams do not upgrade: a 101 cannot come over HTTP/2.
    var channel: Channel? { nil }

    func attach(_ delegate: UpstreamResponseDelegate) {
        self.delegate = delegate
    }

    func send(_ part: RequestPart) {
        guard !isClosed, !requestEnded else { return }
        switch part {
        case .head(let head):
            // Checked as the HTTP/1 writer checks a head (its method, target and fields); they
            // come from checked requests and the policies, so this is the last guard, where
            // NIO's was.
            guard head.isSendableRequestLine, head.fields.isSendable else { return refuseUnsendable() }
            isHeadRequest = head.method == "HEAD"
            heldHead = HPACKHeaders(upstreamRequest: head, scheme: connection.scheme)
        case .body(let buffer):
            guard buffer.readableBytes > 0 else { return }
            writeHeld()
            sendWindow -= buffer.readableBytes
            connection.dataWritten(buffer.readableBytes)
            heldData = buffer
        case .end(let trailers):
            if let trailers, !trailers.isEmpty, !trailers.isSendable { return refuseUnsendable() }
            requestEnded = true
            if let trailers, !trailers.isEmpty {
                writeHeld()
                write(.headers(.init(headers: HPACKHeaders(upstreamTrailers: trailers), endStream: true)))
            } else if let head = heldHead {
                // A request without a body: one HEADERS frame that ends the stream.
                heldHead = nil
                open(with: head, endStream: true)
            } else if let last = heldData {
                heldData = nil
                write(.data(.init(data: .byteBuffer(last), endStream: true)))
            } else {
                write(.data(.init(data: .byteBuffer(connection.allocator.buffer(capacity: 0)), endStream: true)))
            }
        }
    }

    func flush() {
        writeHeld()
        connection.flush()
    }

    func resumeReading() {
        settle()
    }

    func release(reusable: Bool) {
        delegate = nil
        let endedNormally = !isClosed && requestEnded && responseEnded
        if !isClosed, let id, !endedNormally {
            // The exchange is done with a stream still open (the client left, a timeout, a
            // retry, or the answer came before the whole request): RST_STREAM, CANCEL;
            // NO_ERROR once the answer is whole (RFC 9113 8.1). The connection's other
            // streams are not concerned.
            connection.reset(self, id: id, code: responseEnded ? .noError : .cancel)
        }
        isClosed = true
        heldHead = nil
        heldData = nil
        // Only a stream that ended normally says anything about its connection: not reusable
        // then means it served its `maxRequestsPerConnection`.
        finish(retire: endedNormally && !reusable)
    }

    func leaveForUpgrade(messageEnded: @escaping () -> Void) {
        // Not reached: the exchange upgrades only with a channel to glue.
        release(reusable: false)
    }

    // MARK: From the connection

    /// The head goes out: the stream gets its id and joins the connection's table.
    private func open(with head: HPACKHeaders, endStream: Bool) {
        guard let id = connection.open(self) else {
            // The connection cannot open another stream (it closed, got GOAWAY, or ran out of
            // ids): nothing was sent, so the request is refused, and its slot is free.
            isClosed = true
            finish(retire: false)
            connection.eventLoop.assumeIsolated().execute { self.delegate?.upstreamRefused() }
            return
        }
        self.id = id
        write(.headers(.init(headers: head, endStream: endStream)))
    }

    private func writeHeld() {
        if let head = heldHead {
            heldHead = nil
            open(with: head, endStream: false)
        }
        if let data = heldData {
            heldData = nil
            write(.data(.init(data: .byteBuffer(data), endStream: false)))
        }
    }

    private func write(_ payload: HTTP2Frame.FramePayload) {
        guard !isClosed, let id else { return }
        connection.write(HTTP2Frame(streamID: id, payload: payload))
    }

    /// The request could not be written as it is: the stream is reset if its head went out
    /// already (trailers), and the exchange hears of it as a closed stream (502) on the next
    /// tick, not from inside its own `send`.
    private func refuseUnsendable() {
        if let id, !isClosed { connection.reset(self, id: id, code: .internalError) }
        isClosed = true
        heldHead = nil
        finish(retire: false)
        connection.eventLoop.assumeIsolated().execute {
            guard let delegate = self.delegate else { return }
            self.delegate = nil
            delegate.upstreamClosed()
        }
    }

    /// A header block from the upstream: the response head (after any 1xx), or its trailers.
    func receivedHeaders(_ headers: HTTP2Frame.FramePayload.Headers) {
        guard !isClosed else { return }
        if responseStarted {
            guard headers.endStream, bodyLength.count(0, ending: true),
                  let trailers = try? HTTPFieldList(http2Trailers: headers.headers) else {
                return protocolError()
            }
            endResponse(trailers: trailers)
            return
        }
        let head: ResponseHead
        do {
            head = try ResponseHead(http2Fields: headers.headers)
        } catch {
            return protocolError()
        }
        if head.status < 200 {
            // Interim answers are not relayed (Portico answers `Expect` itself), and a 101
            // cannot come over HTTP/2.
            if head.status == 101 || headers.endStream { protocolError() }
            return
        }
        do {
            // RFC 9110 8.6: the answer to a HEAD, and a 304, carry the length of a body they
            // do not have.
            bodyLength = BodyLengthCheck(declared: isHeadRequest || head.status == 304 ? 0 : try head.fields.declaredContentLength())
        } catch {
            return protocolError()
        }
        if headers.endStream, !bodyLength.count(0, ending: true) { return protocolError() }
        responseStarted = true
        delegate?.upstreamResponseHead(head)
        if headers.endStream { endResponse(trailers: nil) }
    }

    /// DATA from the upstream. False when it overran the window it was given.
    func receivedData(_ payload: HTTP2Frame.FramePayload.Data) -> Bool {
        guard !isClosed, case .byteBuffer(let buffer) = payload.data else { return true }
        let flowControlled = buffer.readableBytes + (payload.paddingBytes.map { $0 + 1 } ?? 0)
        guard credit.received(flowControlled) == .accepted else { return false }
        guard responseStarted, bodyLength.count(buffer.readableBytes, ending: payload.endStream) else {
            protocolError()
            return true
        }
        unsettled += flowControlled
        if buffer.readableBytes > 0 { delegate?.upstreamResponseBody(buffer) }
        if payload.endStream {
            endResponse(trailers: nil)
        } else if delegate?.downstreamIsWritable ?? true {
            settle()
        }
        return true
    }

    private func endResponse(trailers: HTTPFieldList?) {
        responseEnded = true
        unsettled = 0
        if requestEnded { connection.streamEnded(self) }
        delegate?.upstreamResponseEnd(trailers)
    }

    /// Gives the upstream back the window for what the client took.
    private func settle() {
        guard unsettled > 0, !isClosed, !responseEnded, let id else { return }
        let consumed = unsettled
        unsettled = 0
        if let increment = credit.consumed(consumed) { connection.sendWindowUpdate(increment, on: id) }
    }

    /// The upstream broke the protocol on this stream: it is reset, and the exchange hears
    /// of it as a reset.
    private func protocolError() {
        guard let id else { return }
        connection.reset(self, id: id, code: .protocolError)
        closed(refused: false)
    }

    /// The stream is over from the upstream's side or the connection's: reset, refused, or
    /// the connection closed. The exchange hears of it unless its answer was already whole.
    func closed(refused: Bool) {
        guard !isClosed else { return }
        isClosed = true
        heldHead = nil
        heldData = nil
        // Its slot is free before the exchange hears: a retry may lease from the same pool.
        finish(retire: false)
        guard !responseEnded, let delegate else { return }
        self.delegate = nil
        if refused { delegate.upstreamRefused() } else { delegate.upstreamClosed() }
    }

    func writabilityMayHaveChanged(wasWritable: Bool) {
        if !wasWritable && isWritable { delegate?.upstreamWritabilityChanged(isWritable: true) }
    }

    /// Back to the pool: the stream no longer counts against the connection's limit.
    private func finish(retire: Bool) {
        guard !released else { return }
        released = true
        connection.streamReleased(self, retire: retire)
    }
}
