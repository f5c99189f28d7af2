import NIOCore

/// Parses HTTP/1 responses from an upstream connection, in place and strictly.
///
/// The same rules as `HTTP1RequestParser` apply to the head (RFC 9112 §2.2, §4, §5) and to
/// `Content-Length`, `Transfer-Encoding` and chunked bodies (§6, §7), and every error is
/// answered to the client with 502. A response is framed by what it answers (RFC 9112 §6.3):
/// - to HEAD, and 204 and 304: no body, whatever the fields say;
/// - 1xx interim responses (100, 103...): a head with no body and no `.end`; the final
///   response follows;
/// - 101, and a 2xx to CONNECT: a head, `.end`, then the parser waits and hands back the
///   remaining bytes with `acceptUpgrade()`;
/// - otherwise chunked, `Content-Length`, or, with neither, the body runs until the upstream
///   closes (`feedEOF()` ends it).
///
/// The caller says which request each response answers with `expectResponse(to:)`, in the
/// order the requests were sent. Bytes with no request waiting are an error: an upstream
/// that answers what was never asked cannot be trusted with the next exchange.
public struct HTTP1ResponseParser {
    /// What the response answers, as far as framing cares.
    public enum Request: Sendable, Hashable {
        case head
        case connect
        case other
    }

    public enum Event: Sendable {
        case head(HTTP1ResponseHead)
        /// Body bytes, a slice of a buffer that was fed in.
        case body(ByteBuffer)
        /// The response is complete; a chunked body may end with trailers.
        case end(trailers: HTTPFieldList?)
        /// The response is malformed; answer 502 and close the upstream connection.
        case error(HTTP1ParseError)
    }

    private enum Phase {
        case head
        case body
        case trailers
        case endDue
        case awaitingUpgradeDecision
        case upgraded
        case closed
        case failed
    }

    private enum Step {
        case emit(Event)
        case again
        case wait
    }

    private var input = ByteBuffer()
    private var phase = Phase.head
    private var sawEOF = false
    private var scanner: HTTP1HeadScanner
    private var trailerScanner: HTTP1HeadScanner
    private var bodyDecoder = HTTP1BodyDecoder()
    private var statusLine: HTTP1StatusLine?
    /// The requests sent and not yet answered, oldest first.
    private var expected: [Request] = []
    /// The oldest request not yet answered is `expected[answered]`. Answered ones are dropped
    /// all at once when none is left, keeping the capacity: `removeFirst` reallocated.
    private var answered = 0
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

    /// A request was sent on this connection; its response comes after those of earlier ones.
    public mutating func expectResponse(to request: Request) {
        self.expected.append(request)
    }

    /// Adds bytes received from the upstream. Ignored once the parser has stopped.
    public mutating func feed(_ bytes: ByteBuffer) {
        switch self.phase {
        case .failed, .closed, .upgraded:
            return
        default:
            break
        }
        self.input.appendReceived(bytes)
    }

    /// The upstream closed its side: this ends a body that runs until the close, and cuts
    /// short any other message.
    public mutating func feedEOF() {
        self.sawEOF = true
    }

    public var isAwaitingUpgradeDecision: Bool { self.phase == .awaitingUpgradeDecision }

    /// Whether the parser sits between messages with no byte of the next one received.
    public var isIdle: Bool { self.phase == .head && self.input.readableBytes == 0 }

    /// Whether the parser has stopped for good (an error, `Connection: close`, an upgrade).
    public var isFinished: Bool {
        switch self.phase {
        case .failed, .closed, .upgraded: return true
        default: return false
        }
    }

    /// Returns every byte received after the 101 or CONNECT response, untouched.
    public mutating func acceptUpgrade() -> ByteBuffer {
        precondition(self.phase == .awaitingUpgradeDecision, "no upgrade is waiting")
        self.phase = .upgraded
        let rest = self.input
        self.input = ByteBuffer()
        return rest
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
            let step: Step
            switch self.phase {
            case .head:
                step = self.parseHead()
            case .endDue:
                step = .emit(self.endMessage(trailers: nil))
            case .body:
                step = self.parseBody()
            case .trailers:
                step = self.parseTrailers()
            case .awaitingUpgradeDecision, .upgraded, .closed, .failed:
                step = .wait
            }
            switch step {
            case .emit(let event): return event
            case .again: continue
            case .wait: return nil
            }
        }
    }

    private mutating func parseHead() -> Step {
        if self.input.readableBytes > 0 && self.answered == self.expected.count {
            return .emit(self.fail(.unexpectedResponse))
        }
        // A copy of the buffer (no bytes copied) keeps the closure's access to `self` apart
        // from the read of `self.input`.
        let input = self.input
        let result = input.withUnsafeReadableBytes { self.scanner.scan($0) }
        switch result {
        case .needMore:
            guard self.sawEOF else { return .wait }
            guard self.input.readableBytes > 0 else {
                self.stop(.closed)
                return .wait
            }
            return .emit(self.fail(.truncatedMessage))
        case .emptyLineBeforeStartLine:
            return .emit(self.fail(.invalidStatusLine))
        case .startLine(let range):
            guard let line = self.input.withUnsafeReadableBytes({ HTTP1StatusLine.parse($0, range) }) else {
                return .emit(self.fail(.invalidStatusLine))
            }
            self.statusLine = line
            return .again
        case .complete(let length):
            return .emit(self.completeHead(length: length))
        case .error(let reason):
            return .emit(self.fail(reason))
        }
    }

    private mutating func completeHead(length: Int) -> Event {
        let line = self.statusLine!
        let facts = self.scanner.facts
        let request = self.expected[self.answered]
        let framing: HTTP1BodyFraming
        switch HTTP1ResponseParser.framing(line, facts, request) {
        case .success(let decided): framing = decided
        case .failure(let reason): return self.fail(reason)
        }
        let keepAlive =
            framing != .untilClose
            && (line.version == .http1_1 ? !facts.connectionClose : facts.connectionKeepAlive && !facts.connectionClose)
        let bytes = self.input.readSlice(length: length)!
        let head = HTTP1ResponseHead(
            fields: HTTPFieldList(storage: bytes, entries: self.scanner.takeEntries()),
            line: line,
            framing: framing,
            keepAlive: keepAlive
        )
        self.statusLine = nil
        if head.isInformational {
            // An interim response: the final one for the same request follows.
            return .head(head)
        }
        self.answered += 1
        if self.answered == self.expected.count {
            self.expected.removeAll(keepingCapacity: true)
            self.answered = 0
        }
        self.closeAfterMessage = !keepAlive
        self.upgradeAfterMessage = line.status == 101 || (request == .connect && (200..<300).contains(line.status))
        self.bodyDecoder.start(framing)
        self.phase = framing == .none ? .endDue : .body
        return .head(head)
    }

    /// The body's framing, from the fields, the status and the request (RFC 9112 §6.3).
    static func framing(
        _ line: HTTP1StatusLine,
        _ facts: HTTP1FramingFacts,
        _ request: Request
    ) -> Result<HTTP1BodyFraming, HTTP1ParseError.Reason> {
        // Conflicting framing is refused even where the status means no body: an upstream
        // that sends it is confused about what it sent.
        if facts.transferCoding == .chunked {
            guard line.version == .http1_1 else { return .failure(.transferEncodingOnHTTP10) }
            guard facts.contentLength == nil else { return .failure(.contentLengthWithTransferEncoding) }
        }
        if line.status < 200 || line.status == 204 || line.status == 304 || request == .head {
            return .success(.none)
        }
        if request == .connect && line.status < 300 {
            return .success(.none)
        }
        if facts.transferCoding == .chunked { return .success(.chunked) }
        if let length = facts.contentLength { return .success(length > 0 ? .length(length) : .none) }
        return .success(.untilClose)
    }

    private mutating func parseBody() -> Step {
        let output = self.sawEOF && self.input.readableBytes == 0
            ? self.bodyDecoder.decodeEOF() : self.bodyDecoder.decode(&self.input)
        switch output {
        case .body(let slice):
            return .emit(.body(slice))
        case .end:
            return .emit(self.endMessage(trailers: nil))
        case .trailerSection:
            self.phase = .trailers
            return .again
        case .needMore:
            return self.sawEOF ? .again : .wait
        case .error(let reason):
            return .emit(self.fail(reason))
        }
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
        return .error(.response(reason))
    }

    private mutating func stop(_ phase: Phase) {
        self.phase = phase
        self.input = ByteBuffer()
    }
}
