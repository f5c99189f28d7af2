import PorticoConfig
import PorticoHTTP1

/// The edge checks and edits of a request's fields, done on the received bytes: a `String` is
/// made only for the few values that are read as text (`Content-Length`, `Transfer-Encoding`,
/// `Connection`, `Upgrade`), and those are short enough to be stored inline.
extension HTTPFieldList {
    /// Checks `Content-Length` and `Transfer-Encoding` the way RFC 9112 section 6 asks of a
    /// proxy, and as nginx and HAProxy do: a request that has both, several different lengths,
    /// or any transfer coding but a single `chunked` is refused rather than guessed at.
    ///
    /// HTTP/1's parser has refused all of this already; an HTTP/2 request (whose
    /// `content-length` nobody has read yet) meets the same rules here.
    func validateRequestFraming(version: HTTPProtocolVersion = .http1_1) throws(FramingError) -> Int? {
        var contentLength: Int?
        var transferEncoding: String?
        for index in 0..<count {
            let field = self[index]
            if field.hasName("content-length") {
                try Self.readContentLength(field.value, into: &contentLength)
            } else if field.hasName("transfer-encoding") {
                // Two lines would be read as one list by some parsers and as the last line by
                // others: there is no single meaning to forward.
                guard transferEncoding == nil else { throw .invalidTransferEncoding }
                transferEncoding = field.value
            }
        }
        guard let transferEncoding else { return contentLength }
        if contentLength != nil { throw .contentLengthWithTransferEncoding }
        if version == .http1_0 { throw .transferEncodingOnHTTP10 }
        var sawUnsupported = false
        var members = transferEncoding.split(separator: ",", omittingEmptySubsequences: false)[...]
        guard let last = members.popLast() else { throw .invalidTransferEncoding }
        for member in members {
            let coding = member.trimmingASCIISpaces()
            // An empty member, a parameter or a space inside is no coding Portico could name.
            guard !coding.isEmpty, coding.utf8.allSatisfy(HTTPToken.isTokenByte) else { throw .invalidTransferEncoding }
            // `chunked` is applied once, and last (RFC 9112 6.1).
            if coding.equalsASCIICaseInsensitive("chunked") { throw .invalidTransferEncoding }
            sawUnsupported = true
        }
        let lastCoding = last.trimmingASCIISpaces()
        guard !lastCoding.isEmpty, lastCoding.utf8.allSatisfy(HTTPToken.isTokenByte) else { throw .invalidTransferEncoding }
        // A final coding other than chunked leaves the body without an end a proxy can find
        // (RFC 9112 6.3: 400).
        guard lastCoding.equalsASCIICaseInsensitive("chunked") else { throw .invalidTransferEncoding }
        if sawUnsupported { throw .unsupportedTransferCoding }
        return nil
    }

    /// The length the `content-length` fields give, nil with none, under the same rules.
    func declaredContentLength() throws(FramingError) -> Int? {
        var contentLength: Int?
        for index in 0..<count where self[index].hasName("content-length") {
            try Self.readContentLength(self[index].value, into: &contentLength)
        }
        return contentLength
    }

    /// A list such as "5, 5" is allowed when every member agrees, with the length already read.
    private static func readContentLength(_ value: String, into contentLength: inout Int?) throws(FramingError) {
        if let length = plainDigits(value) {
            // The common case, one number, read without splitting into substrings.
            if let existing = contentLength, existing != length { throw .conflictingContentLengths }
            contentLength = length
            return
        }
        for member in value.split(separator: ",", omittingEmptySubsequences: false) {
            let trimmed = member.trimmingASCIISpaces()
            guard !trimmed.isEmpty, trimmed.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }),
                  let length = Int(trimmed) else { throw .invalidContentLength }
            if let existing = contentLength, existing != length { throw .conflictingContentLengths }
            contentLength = length
        }
    }

    /// The value as a number when it is only ASCII digits (at most 18, so it cannot overflow).
    private static func plainDigits(_ value: String) -> Int? {
        var value = value
        return value.withUTF8 { bytes -> Int? in
            guard !bytes.isEmpty, bytes.count <= 18 else { return nil }
            var length = 0
            for byte in bytes {
                guard byte >= 48 && byte <= 57 else { return nil }
                length = length * 10 + Int(byte - 48)
            }
            return length
        }
    }

    /// Checks the `Host` fields of a request: RFC 9112 3.2 asks for 400 on more than one, or on
    /// one whose value is not `host[:port]`. An HTTP/2 request's `:authority` arrives as `host`.
    var hasValidHost: Bool {
        var seen = false
        for index in 0..<count where self[index].hasName("host") {
            if seen { return false }
            seen = true
            if !self[index].withUnsafeValueBytes(HostHeader.isValid) { return false }
        }
        return true
    }

    /// Whether any field name has an `_`.
    var hasUnderscoreName: Bool {
        for index in 0..<count where self[index].nameHasUnderscore { return true }
        return false
    }

    /// Removes every field whose name has an `_`.
    mutating func removeUnderscoreNames() {
        removeAll { $0.nameHasUnderscore }
    }

    /// Removes the fields spelled as one of `names` with `_` for `-` (`X_Forwarded_For`): a
    /// backend that maps `_` to `-` would read them as that name. Only a listener that allows
    /// underscore names lets them this far.
    mutating func removeUnderscoreSpellings(of names: [String]) {
        removeAll { field in
            guard field.nameHasUnderscore else { return false }
            let dashed = String(decoding: field.nameBytes.map { $0 == UInt8(ascii: "_") ? UInt8(ascii: "-") : $0 }, as: UTF8.self)
            return names.contains { dashed.equalsASCIICaseInsensitive(other: $0) }
        }
    }

    /// Removes the hop-by-hop headers of RFC 9110 section 7.6.1: `Connection` and every header
    /// it names, plus the fixed list. `keepUpgrade` leaves `Upgrade` and `Connection: upgrade`
    /// in place for a request that switches protocols.
    mutating func removeHopByHop(keepUpgrade: Bool = false) {
        // Most requests carry none of these: one scan, and no edit, for them.
        var hasHopByHop = false
        for index in 0..<count where Self.isHopByHop(self[index]) {
            hasHopByHop = true
            break
        }
        guard hasHopByHop else { return }
        // The names `Connection` lists, but only those that are not hop-by-hop anyway: the usual
        // `Connection: keep-alive` or `close` costs no array and no `String`.
        var named: [String] = []
        var hadConnection = false
        for index in 0..<count where self[index].hasName("connection") {
            hadConnection = true
            self[index].withUnsafeValueBytes { value in
                var start = 0
                while start <= value.count {
                    var end = start
                    while end < value.count && value[end] != UInt8(ascii: ",") { end += 1 }
                    var first = start
                    var last = end
                    while first < last && (value[first] == 0x20 || value[first] == 0x09) { first += 1 }
                    while last > first && (value[last - 1] == 0x20 || value[last - 1] == 0x09) { last -= 1 }
                    let token = UnsafeRawBufferPointer(rebasing: value[first..<last])
                    // `close` is an option, not a field's name.
                    if !token.isEmpty, !Self.isHopByHopName(token), !HTTPFieldList.equalsIgnoringCase(token, "close") {
                        named.append(String(decoding: token, as: UTF8.self))
                    }
                    start = end + 1
                }
            }
        }
        removeAll { field in
            if Self.isHopByHop(field) { return !(keepUpgrade && field.hasName("upgrade")) }
            return !named.isEmpty && named.contains { field.hasName(matching: $0) }
        }
        if keepUpgrade && hadConnection { append(name: "connection", value: "upgrade") }
    }

    /// Whether `name` is `Connection` or one of the fixed hop-by-hop names (any case).
    private static func isHopByHopName(_ name: UnsafeRawBufferPointer) -> Bool {
        switch name.count {
        case 2: return HTTPFieldList.equalsIgnoringCase(name, "te")
        case 7: return HTTPFieldList.equalsIgnoringCase(name, "upgrade") || HTTPFieldList.equalsIgnoringCase(name, "trailer")
        case 10:
            return HTTPFieldList.equalsIgnoringCase(name, "connection") || HTTPFieldList.equalsIgnoringCase(name, "keep-alive")
        case 16: return HTTPFieldList.equalsIgnoringCase(name, "proxy-connection")
        case 17: return HTTPFieldList.equalsIgnoringCase(name, "transfer-encoding")
        case 18: return HTTPFieldList.equalsIgnoringCase(name, "proxy-authenticate")
        case 19: return HTTPFieldList.equalsIgnoringCase(name, "proxy-authorization")
        default: return false
        }
    }

    private static func isHopByHop(_ field: HTTPField) -> Bool {
        field.withUnsafeNameBytes(isHopByHopName)
    }

    /// Whether the request says `Expect: 100-continue`.
    var expectsContinue: Bool {
        containsToken("100-continue", inFieldNamed: "expect")
    }

    /// True when the request asks to switch protocols (WebSocket and the like).
    var isUpgradeRequest: Bool {
        contains("upgrade") && containsToken("upgrade", inFieldNamed: "connection")
    }

    /// Whether every protocol the `Upgrade` fields name is in `allowed` (lower-cased names,
    /// compared without a `/version`).
    func upgradeProtocolsAllowed(_ allowed: [String]) -> Bool {
        guard !allowed.isEmpty else { return false }
        var named = false
        for value in values(of: "upgrade") {
            for protocolName in value.split(separator: ",") {
                let token = protocolName.trimmingASCIISpaces()
                let name = token.split(separator: "/", maxSplits: 1).first.map { $0.lowercased() } ?? ""
                guard allowed.contains(name) else { return false }
                named = true
            }
        }
        return named
    }
}
