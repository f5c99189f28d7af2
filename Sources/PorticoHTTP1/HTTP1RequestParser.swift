import NIOCore

/// Parses HTTP/1 requests from the bytes of a connection, in place and strictly.
///
/// Feed it the bytes as they arrive, split anywhere, then pull `Event`s with `next()` until it
/// returns nil. A head is the received bytes plus offsets (`HTTP1RequestHead`); body bytes are
/// slices of the received buffers. Nothing here does I/O or reads a clock.
///
/// **Why strict.** A proxy and the server behind it must agree on where each request ends;
/// where they do not, one client's bytes become another request (request smuggling). So
/// wherever RFC 9110/9112 lets a recipient be lenient, this parser rejects instead:
/// - RFC 9112 §2.2, §5: no bare CR, no LF without CR, no NUL or other control byte in a head,
///   no obs-fold (a line starting with whitespace), no whitespace between a field name and its
///   colon. Field names are tokens; values lose their leading and trailing whitespace.
/// - RFC 9112 §3: a method token, single spaces, a request-target of visible ASCII in one of
///   its four forms (authority form for CONNECT only, `*` for OPTIONS only), and exactly
///   `HTTP/1.0` or `HTTP/1.1`.
/// - RFC 9112 §6.1–6.3: `Content-Length` and `Transfer-Encoding` together are rejected, not
///   reconciled; so are two `Content-Length`s (equal or not), one with a sign, inner spaces,
///   a list or more digits than fit an Int64, two `Transfer-Encoding` lines, and
///   `Transfer-Encoding` on HTTP/1.0. The only coding accepted is a single, final `chunked`:
///   another coding is 501, a malformed list or a misplaced `chunked` 400.
/// - RFC 9112 §7.1: chunk sizes of 2^63 or more, malformed chunk extensions, and anything but
///   CRLF after a chunk's data are rejected; so are `Content-Length`, `Transfer-Encoding` and
///   `Host` among trailers (RFC 9110 §6.5.1).
/// - RFC 9112 §3.2: a second `Host`, or one that is not `host[:port]`, is rejected.
/// - A CONNECT request with a body is rejected: what follows its head is the tunnel.
///
/// An error is final. The parser reports it once, with the status to answer (400, 431 for a
/// head over `maxHeadBytes`, 501), and interprets no byte after it: the caller answers and
/// closes. Enforcing a body size (413) is the caller's job, as it sees every body slice.
///
/// After a message ends, the next one is parsed from the bytes that remain (pipelining),
/// unless the message asked to close the connection: then the rest is ignored. After a
/// request asking to switch protocols (`isUpgradeRequest`), the parser waits: the caller
/// either takes the remaining bytes with `acceptUpgrade()` or resumes with `declineUpgrade()`.
public struct HTTP1RequestParser {
    public enum Event: Sendable {
        case head(HTTP1RequestHead)
        /// Body bytes, a slice of a buffer that was fed in.
        case body(ByteBuffer)
        /// The message is complete; a chunked body may end with trailers.
        case end(trailers: HTTPFieldList?)
        /// The request is malformed; answer `status` and close. No event follows.
        case error(HTTP1ParseError)
    }

    private enum Phase {
        case head
        case body
        case trailers
        /// The head had no body: `.end` is due.
        case endDue
        /// An upgrade request ended; bytes are kept for the caller.
        case awaitingUpgradeDecision
        case upgraded
        /// The message said `Connection: close`: nothing more is parsed.
        case closed
        case failed
    }

    private var input = ByteBuffer()
    private var phase = Phase.head
    private var sawEOF = false
    private var scanner: HTTP1HeadScanner
    private var trailerScanner: HTTP1HeadScanner
    private var bodyDecoder = HTTP1BodyDecoder()
    private var requestLine: HTTP1RequestLine?
    /// What happens once the current message ends.
    private var closeAfterMessage = false
    private var upgradeAfterMessage = false

    public init(limits: HTTP1ParserLimits = HTTP1ParserLimits()) {
        self.scanner = HTTP1HeadScanner(maxBytes: limits.maxHeadBytes, maxFields: limits.maxFields, expectsStartLine: true)
        self.trailerScanner = HTTP1HeadScanner(
            maxBytes: limits.maxHeadBytes,
            maxFields: limits.maxFields,
            expectsStartLine: false
        )
    }

    /// Adds bytes received from the client. Ignored once the parser has failed, closed or
    /// handed the connection over to an upgrade.
    public mutating func feed(_ bytes: ByteBuffer) {
        switch self.phase {
        case .failed, .closed, .upgraded:
            return
        default:
            break
        }
        self.input.appendReceived(bytes)
    }

    /// The client closed its side: a message cut short becomes an error.
    public mutating func feedEOF() {
        self.sawEOF = true
    }

    /// Whether an upgrade request has ended and the parser waits for the caller's decision.
    public var isAwaitingUpgradeDecision: Bool { self.phase == .awaitingUpgradeDecision }

    /// Whether the parser sits between messages with no byte of the next one received.
    public var isIdle: Bool { self.phase == .head && self.input.readableBytes == 0 }

    /// Some bytes of a request head are here and the rest is not (a head sent slowly).
    public var isInsideHead: Bool { self.phase == .head && self.input.readableBytes > 0 }

    /// Whether the parser has stopped for good (an error, `Connection: close`, an upgrade).
    public var isFinished: Bool {
        switch self.phase {
        case .failed, .closed, .upgraded: return true
        default: return false
        }
    }

    /// The upgrade happens: returns every byte received after the upgrade request, untouched,
    /// and parses nothing more.
    public mutating func acceptUpgrade() -> ByteBuffer {
        precondition(self.phase == .awaitingUpgradeDecision, "no upgrade request is waiting")
        self.phase = .upgraded
        let rest = self.input
        self.input = ByteBuffer()
        return rest
    }

    /// The upgrade does not happen: parsing goes on with the next request.
    public mutating func declineUpgrade() {
        precondition(self.phase == .awaitingUpgradeDecision, "no upgrade request is waiting")
        self.phase = self.closeAfterMessage ? .closed : .head
        self.upgradeAfterMessage = false
    }

    /// The next event, or nil when more bytes are needed (or the parser has stopped).
    public mutating func next() -> Event? {
        if let event = self.nextEvent() { return event }
        // Every byte received is parsed: let go of the buffer, so that the channel, which
        // reuses its receive buffer only when nobody else holds it, need not allocate one.
        if self.input.readableBytes == 0 && self.input.capacity > 0 { self.input = ByteBuffer() }
        return nil
    }

    private mutating func nextEvent() -> Event? {
        while true {
            switch self.phase {
            case .head:
                switch self.parseHead() {
                case .emit(let event): return event
                case .again: continue
                case .wait: return nil
                }
            case .endDue:
                return self.endMessage(trailers: nil)
            case .body:
                switch self.bodyDecoder.decode(&self.input) {
                case .body(let slice):
                    return .body(slice)
                case .end:
                    return self.endMessage(trailers: nil)
                case .trailerSection:
                    self.phase = .trailers
                case .needMore:
                    guard self.sawEOF else { return nil }
                    return self.fail(.truncatedMessage)
                case .error(let reason):
                    return self.fail(reason)
                }
            case .trailers:
                switch self.parseTrailers() {
                case .emit(let event): return event
                case .again: continue
                case .wait: return nil
                }
            case .awaitingUpgradeDecision, .upgraded, .closed, .failed:
                return nil
            }
        }
    }

    /// What a parsing step leads to.
    private enum Step {
        case emit(Event)
        /// The phase or the input changed: go on.
        case again
        /// More bytes are needed.
        case wait
    }

    private mutating func parseHead() -> Step {
        // A copy of the buffer (no bytes copied) keeps the closure's access to `self` apart
        // from the read of `self.input`.
        let input = self.input
        let result = input.withUnsafeReadableBytes { self.scanner.scan($0) }
        switch result {
        case .needMore:
            guard self.sawEOF else { return .wait }
            // A close between requests is the normal end of a connection.
            guard self.input.readableBytes > 0 else {
                self.stop(.closed)
                return .wait
            }
            return .emit(self.fail(.truncatedMessage))
        case .emptyLineBeforeStartLine:
            self.input.moveReaderIndex(forwardBy: 2)
            return .again
        case .startLine(let range):
            let parsed = self.input.withUnsafeReadableBytes { HTTP1RequestLine.parse($0, range) }
            switch parsed {
            case .success(let line): self.requestLine = line
            case .failure(let reason): return .emit(self.fail(reason))
            }
            return .again
        case .complete(let length):
            return .emit(self.completeHead(length: length))
        case .error(let reason):
            return .emit(self.fail(reason))
        }
    }

    private mutating func completeHead(length: Int) -> Event {
        let line = self.requestLine!
        let facts = self.scanner.facts
        let framing: HTTP1BodyFraming
        switch HTTP1RequestParser.framing(line, facts) {
        case .success(let decided): framing = decided
        case .failure(let reason): return self.fail(reason)
        }
        let keepAlive =
            line.version == .http1_1 ? !facts.connectionClose : (facts.connectionKeepAlive && !facts.connectionClose)
        let isUpgrade = line.kind == .connect || (facts.hasUpgrade && facts.connectionUpgrade)
        let bytes = self.input.readSlice(length: length)!
        let head = HTTP1RequestHead(
            fields: HTTPFieldList(storage: bytes, entries: self.scanner.takeEntries()),
            line: line,
            framing: framing,
            keepAlive: keepAlive,
            isUpgradeRequest: isUpgrade
        )
        self.requestLine = nil
        self.closeAfterMessage = !keepAlive
        self.upgradeAfterMessage = isUpgrade
        self.bodyDecoder.start(framing)
        self.phase = framing == .none ? .endDue : .body
        return .head(head)
    }

    /// The body's framing, from the fields and the request line (RFC 9112 §6.3).
    static func framing(
        _ line: HTTP1RequestLine,
        _ facts: HTTP1FramingFacts
    ) -> Result<HTTP1BodyFraming, HTTP1ParseError.Reason> {
        if facts.transferCoding == .chunked {
            // HTTP/1.0 has no chunked coding: a 1.0 hop in front would read this differently.
            guard line.version == .http1_1 else { return .failure(.transferEncodingOnHTTP10) }
            guard facts.contentLength == nil else { return .failure(.contentLengthWithTransferEncoding) }
            guard line.kind != .connect else { return .failure(.bodyOnConnect) }
            return .success(.chunked)
        }
        guard let length = facts.contentLength, length > 0 else { return .success(.none) }
        guard line.kind != .connect else { return .failure(.bodyOnConnect) }
        return .success(.length(length))
    }

    private mutating func parseTrailers() -> Step {
        // A copy of the buffer (no bytes copied) keeps the closure's access to `self` apart
        // from the read of `self.input`.
        let input = self.input
        let result = input.withUnsafeReadableBytes { self.trailerScanner.scan($0) }
        switch result {
        case .needMore:
            guard self.sawEOF else { return .wait }
            return .emit(self.fail(.truncatedMessage))
        case .complete(let length):
            let bytes = self.input.readSlice(length: length)!
            let entries = self.trailerScanner.takeEntries()
            let trailers = entries.isEmpty ? nil : HTTPFieldList(storage: bytes, entries: entries)
            return .emit(self.endMessage(trailers: trailers))
        case .error(let reason):
            return .emit(self.fail(reason))
        case .emptyLineBeforeStartLine, .startLine:
            preconditionFailure("a trailer section has no start line")
        }
    }

    private mutating func endMessage(trailers: HTTPFieldList?) -> Event {
        if self.upgradeAfterMessage {
            self.phase = .awaitingUpgradeDecision
        } else if self.closeAfterMessage {
            self.stop(.closed)
        } else {
            self.phase = .head
        }
        return .end(trailers: trailers)
    }

    private mutating func fail(_ reason: HTTP1ParseError.Reason) -> Event {
        self.stop(.failed)
        return .error(.request(reason))
    }

    /// Moves to a final phase and lets go of the bytes not parsed.
    private mutating func stop(_ phase: Phase) {
        self.phase = phase
        self.input = ByteBuffer()
    }
}
