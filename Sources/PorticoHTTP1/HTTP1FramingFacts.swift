/// What a head's framing fields say, checked one field line at a time: `Content-Length`,
/// `Transfer-Encoding`, `Host`, `Connection` and `Upgrade`.
///
/// Each field is checked as soon as its line is complete, so a head with a bad length stops
/// at that line. Whether the fields agree with each other and with the start line is decided
/// once the head is complete (`HTTP1Framing`).
struct HTTP1FramingFacts {
    enum TransferCoding: Equatable {
        case none
        /// A single `chunked`, the only coding Portico decodes.
        case chunked
    }

    private(set) var contentLength: Int64?
    private(set) var transferCoding = TransferCoding.none
    private(set) var hasHost = false
    private(set) var connectionClose = false
    private(set) var connectionKeepAlive = false
    private(set) var connectionUpgrade = false
    private(set) var hasUpgrade = false

    /// Checks one field; returns why the head must be rejected, or nil.
    mutating func record(name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) -> HTTP1ParseError.Reason? {
        // Dispatch on the length first: most fields are none of these and cost one compare.
        switch name.count {
        case 4 where HTTPFieldList.equalsIgnoringCase(name, "host"):
            // RFC 9112 §3.2: a server MUST reject more than one Host, or an invalid one.
            guard !self.hasHost else { return .duplicateHost }
            self.hasHost = true
            return HTTP1FramingFacts.isValidHost(value, portRequired: false) ? nil : .invalidHost
        case 7 where HTTPFieldList.equalsIgnoringCase(name, "upgrade"):
            self.hasUpgrade = true
        case 10 where HTTPFieldList.equalsIgnoringCase(name, "connection"):
            if HTTPFieldList.listContains(value, "close") { self.connectionClose = true }
            if HTTPFieldList.listContains(value, "keep-alive") { self.connectionKeepAlive = true }
            if HTTPFieldList.listContains(value, "upgrade") { self.connectionUpgrade = true }
        case 14 where HTTPFieldList.equalsIgnoringCase(name, "content-length"):
            // Two lengths are rejected even when equal: nginx and llhttp do the same, and no
            // honest client sends two.
            guard self.contentLength == nil else { return .duplicateContentLength }
            guard let length = HTTP1FramingFacts.parseContentLength(value) else { return .invalidContentLength }
            self.contentLength = length
        case 17 where HTTPFieldList.equalsIgnoringCase(name, "transfer-encoding"):
            // Two lines would be one list (RFC 9110 §5.3), but parsers that read only the first
            // or the last line disagree on it; nobody needs two.
            guard self.transferCoding == .none else { return .duplicateTransferEncoding }
            switch HTTP1FramingFacts.parseTransferEncoding(value) {
            case .success: self.transferCoding = .chunked
            case .failure(let reason): return reason
            }
        default:
            break
        }
        return nil
    }

    /// Whether `name` is `Content-Length`, `Transfer-Encoding` or `Host`.
    static func isFramingName(_ name: UnsafeRawBufferPointer) -> Bool {
        switch name.count {
        case 4: return HTTPFieldList.equalsIgnoringCase(name, "host")
        case 14: return HTTPFieldList.equalsIgnoringCase(name, "content-length")
        case 17: return HTTPFieldList.equalsIgnoringCase(name, "transfer-encoding")
        default: return false
        }
    }

    /// `1*DIGIT` that fits in an Int64; no sign, no inner space, no list (RFC 9110 §8.6).
    /// Leading zeros are allowed by the grammar and read as decimal.
    static func parseContentLength(_ value: UnsafeRawBufferPointer) -> Int64? {
        guard !value.isEmpty else { return nil }
        var length: Int64 = 0
        for byte in value {
            guard HTTP1ByteClass.digit.contains(byte) else { return nil }
            let (times10, overflow1) = length.multipliedReportingOverflow(by: 10)
            let (sum, overflow2) = times10.addingReportingOverflow(Int64(byte &- UInt8(ascii: "0")))
            guard !overflow1 && !overflow2 else { return nil }
            length = sum
        }
        return length
    }

    /// Accepts exactly one coding, `chunked` (RFC 9112 §6.1, §7).
    ///
    /// A malformed list, or `chunked` missing, twice or not last: 400, as RFC 9112 §6.3
    /// requires of a request whose length cannot be known. Another coding before a final
    /// `chunked`: 501, a coding Portico does not implement. Transfer parameters are not accepted: none are defined for
    /// `chunked`, and accepting them would only give parsers something to disagree on.
    static func parseTransferEncoding(_ value: UnsafeRawBufferPointer) -> Result<Void, HTTP1ParseError.Reason> {
        var chunkedCount = 0
        var chunkedIsLast = false
        var sawOtherCoding = false
        var start = 0
        while start <= value.count {
            var end = start
            while end < value.count && value[end] != UInt8(ascii: ",") { end += 1 }
            var elementStart = start
            var elementEnd = end
            while elementStart < elementEnd && HTTP1ByteClass.isWhitespace(value[elementStart]) { elementStart += 1 }
            while elementEnd > elementStart && HTTP1ByteClass.isWhitespace(value[elementEnd - 1]) { elementEnd -= 1 }
            let element = UnsafeRawBufferPointer(rebasing: value[elementStart..<elementEnd])
            guard !element.isEmpty, element.allSatisfy({ HTTP1ByteClass.token.contains($0) }) else {
                return .failure(.invalidTransferEncoding)
            }
            if HTTPFieldList.equalsIgnoringCase(element, "chunked") {
                chunkedCount += 1
                chunkedIsLast = true
            } else {
                sawOtherCoding = true
                chunkedIsLast = false
            }
            start = end + 1
        }
        if chunkedCount != 1 || !chunkedIsLast { return .failure(.invalidTransferEncoding) }
        if sawOtherCoding { return .failure(.unsupportedTransferCoding) }
        return .success(())
    }

    /// `uri-host [ ":" port ]` (RFC 9110 §7.2, RFC 3986 §3.2.2); empty is allowed for a target
    /// without an authority. An IP literal is `[` hex digits, `:` and `.` `]`.
    static func isValidHost(_ value: UnsafeRawBufferPointer, portRequired: Bool) -> Bool {
        if value.isEmpty { return !portRequired }
        var index = 0
        if value[0] == UInt8(ascii: "[") {
            index = 1
            while index < value.count && value[index] != UInt8(ascii: "]") {
                let byte = value[index]
                guard HTTP1ByteClass.hex.contains(byte) || byte == UInt8(ascii: ":")
                    || byte == UInt8(ascii: ".")
                else { return false }
                index += 1
            }
            guard index < value.count, index > 1 else { return false }
            index += 1
        } else {
            while index < value.count && value[index] != UInt8(ascii: ":") {
                let byte = value[index]
                guard HTTP1ByteClass.regName.contains(byte) else { return false }
                if byte == UInt8(ascii: "%") {
                    guard index + 2 < value.count, HTTP1ByteClass.hex.contains(value[index + 1]),
                        HTTP1ByteClass.hex.contains(value[index + 2])
                    else { return false }
                    index += 2
                }
                index += 1
            }
            guard index > 0 else { return false }
        }
        if index == value.count { return !portRequired }
        guard value[index] == UInt8(ascii: ":") else { return false }
        let port = UnsafeRawBufferPointer(rebasing: value[(index + 1)...])
        return (1...5).contains(port.count) && port.allSatisfy { HTTP1ByteClass.digit.contains($0) }
    }
}
