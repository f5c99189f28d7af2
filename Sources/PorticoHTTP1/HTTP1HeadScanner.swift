/// Finds the lines of a head (start line and field lines) or of a trailer section, as bytes
/// arrive, and records each field as offsets.
///
/// It resumes where the last call stopped, so a head fed one byte at a time costs one pass
/// over its bytes. Every byte is checked as it is first seen: a NUL, another control byte, a
/// CR not followed by LF, or a LF without its CR stops the scan right there, before any later
/// byte is looked at. A line is interpreted only once its CRLF has arrived.
struct HTTP1HeadScanner {
    enum Result: Equatable {
        /// Every byte so far is valid; the section is not complete.
        case needMore
        /// An empty line came where a start line was expected (RFC 9112 §2.2 lets a server
        /// skip these before a request line). The caller consumes the two bytes and rescans.
        case emptyLineBeforeStartLine
        /// The start line is complete: bytes `range` of the section, without its CRLF.
        case startLine(Range<Int>)
        /// The section is complete and is `length` bytes long, its final CRLF included.
        case complete(length: Int)
        case error(HTTP1ParseError.Reason)
    }

    private let maxBytes: Int
    private let maxFields: Int
    /// Whether the section opens with a start line (a head) or not (a trailer section).
    private let expectsStartLine: Bool

    /// Bytes of the section already checked.
    private var scanned = 0
    /// Where the line being scanned begins.
    private var lineStart = 0
    private var sawStartLine = false
    private(set) var entries: [HTTPFieldList.Entry] = []
    /// What the framing fields said, collected for heads only.
    private(set) var facts = HTTP1FramingFacts()

    init(maxBytes: Int, maxFields: Int, expectsStartLine: Bool) {
        self.maxBytes = maxBytes
        self.maxFields = maxFields
        self.expectsStartLine = expectsStartLine
    }

    /// Forgets the section, to scan the next one from the first byte of `bytes`.
    /// The entries array keeps its capacity unless it was handed out.
    mutating func reset() {
        self.scanned = 0
        self.lineStart = 0
        self.sawStartLine = false
        self.entries.removeAll(keepingCapacity: true)
        self.facts = HTTP1FramingFacts()
    }

    /// The recorded fields, leaving the scanner ready for the next section.
    mutating func takeEntries() -> [HTTPFieldList.Entry] {
        let entries = self.entries
        self.entries = []
        self.reset()
        return entries
    }

    /// Continues the scan over `bytes`, which start at the section's first byte and hold at
    /// least what the previous call saw.
    mutating func scan(_ bytes: UnsafeRawBufferPointer) -> Result {
        let count = bytes.count
        let limit = Swift.min(count, self.maxBytes)
        var index = self.scanned
        while index < limit {
            let byte = bytes[index]
            if HTTP1ByteClass.lineByte.contains(byte) {
                index &+= 1
                continue
            }
            switch byte {
            case UInt8(ascii: "\r"):
                guard index + 1 < limit else {
                    // The LF is not here yet, or would fall past the limit.
                    self.scanned = index
                    return count >= self.maxBytes ? .error(.headTooLarge) : .needMore
                }
                guard bytes[index + 1] == UInt8(ascii: "\n") else { return .error(.bareCR) }
                let lineEnd = index
                index += 2
                let result = self.endOfLine(bytes, lineEnd: lineEnd, next: index)
                if result != .needMore { return result }
            case UInt8(ascii: "\n"):
                return .error(.bareLF)
            default:
                return .error(.controlByte)
            }
        }
        self.scanned = index
        return count >= self.maxBytes ? .error(.headTooLarge) : .needMore
    }

    /// Interprets the line that ends at `lineEnd`; `next` is the first byte after its CRLF.
    /// Returns `.needMore` to go on scanning.
    private mutating func endOfLine(_ bytes: UnsafeRawBufferPointer, lineEnd: Int, next: Int) -> Result {
        let lineStart = self.lineStart
        self.lineStart = next
        self.scanned = next
        if self.expectsStartLine && !self.sawStartLine {
            if lineStart == lineEnd {
                self.lineStart = 0
                self.scanned = 0
                return .emptyLineBeforeStartLine
            }
            self.sawStartLine = true
            return .startLine(lineStart..<lineEnd)
        }
        if lineStart == lineEnd {
            return .complete(length: next)
        }
        return self.fieldLine(bytes, start: lineStart, end: lineEnd)
    }

    /// Validates `name ":" OWS value OWS` and records it (RFC 9112 §5).
    private mutating func fieldLine(_ bytes: UnsafeRawBufferPointer, start: Int, end: Int) -> Result {
        // A line that opens with whitespace continues the previous one (obs-fold), or, right
        // after the start line, hides a field from parsers that skip it: both are rejected.
        if HTTP1ByteClass.isWhitespace(bytes[start]) { return .error(.obsoleteLineFolding) }
        var colon = start
        while colon < end && HTTP1ByteClass.token.contains(bytes[colon]) { colon += 1 }
        guard colon < end, bytes[colon] == UInt8(ascii: ":") else {
            // `Name : value` is how `Transfer-Encoding : chunked` slips past one parser and not
            // another (RFC 9112 §5.1: a server MUST reject whitespace before the colon).
            if colon < end && HTTP1ByteClass.isWhitespace(bytes[colon]) { return .error(.whitespaceBeforeColon) }
            return .error(.invalidFieldName)
        }
        guard colon > start else { return .error(.invalidFieldName) }
        var valueStart = colon + 1
        var valueEnd = end
        while valueStart < valueEnd && HTTP1ByteClass.isWhitespace(bytes[valueStart]) { valueStart += 1 }
        while valueEnd > valueStart && HTTP1ByteClass.isWhitespace(bytes[valueEnd - 1]) { valueEnd -= 1 }

        guard self.entries.count < self.maxFields else { return .error(.tooManyFields) }
        if self.entries.isEmpty { self.entries.reserveCapacity(16) }
        self.entries.append(
            HTTPFieldList.Entry(
                nameStart: UInt32(truncatingIfNeeded: start),
                nameLength: UInt32(truncatingIfNeeded: colon - start),
                valueStart: UInt32(truncatingIfNeeded: valueStart),
                valueLength: UInt32(truncatingIfNeeded: valueEnd - valueStart)
            )
        )
        let name = UnsafeRawBufferPointer(rebasing: bytes[start..<colon])
        if self.expectsStartLine {
            let value = UnsafeRawBufferPointer(rebasing: bytes[valueStart..<valueEnd])
            if let reason = self.facts.record(name: name, value: value) { return .error(reason) }
        } else if HTTP1FramingFacts.isFramingName(name) {
            // A length, coding or Host after the body can only be there to confuse whoever
            // merges trailers into the head (RFC 9110 §6.5.1).
            return .error(.framingFieldInTrailers)
        }
        return .needMore
    }
}
