/// `method SP request-target SP HTTP-version` (RFC 9112 §3), as ranges into the head.
struct HTTP1RequestLine {
    /// The methods whose framing or target form differ from the rest.
    enum MethodKind {
        case connect, options, head, other
    }

    var method: Range<Int>
    var target: Range<Int>
    var version: HTTP1Version
    var kind: MethodKind

    /// Parses the line at `line` in `bytes` (CRLF excluded). Single spaces only: a parser that
    /// splits on runs of whitespace and one that does not would read different targets.
    static func parse(_ bytes: UnsafeRawBufferPointer, _ line: Range<Int>) -> Result<HTTP1RequestLine, HTTP1ParseError.Reason> {
        var index = line.lowerBound
        while index < line.upperBound && HTTP1ByteClass.token.contains(bytes[index]) { index += 1 }
        let method = line.lowerBound..<index
        guard !method.isEmpty, index < line.upperBound, bytes[index] == UInt8(ascii: " ") else {
            return .failure(.invalidMethod)
        }
        index += 1
        let targetStart = index
        while index < line.upperBound && HTTP1ByteClass.target.contains(bytes[index]) { index += 1 }
        let target = targetStart..<index
        guard !target.isEmpty, index < line.upperBound, bytes[index] == UInt8(ascii: " ") else {
            return .failure(.invalidTarget)
        }
        guard let version = HTTP1Version.parse(UnsafeRawBufferPointer(rebasing: bytes[(index + 1)..<line.upperBound]))
        else { return .failure(.invalidVersion) }

        let methodBytes = UnsafeRawBufferPointer(rebasing: bytes[method])
        let kind: MethodKind
        if HTTPFieldList.equals(methodBytes, "CONNECT") {
            kind = .connect
        } else if HTTPFieldList.equals(methodBytes, "OPTIONS") {
            kind = .options
        } else if HTTPFieldList.equals(methodBytes, "HEAD") {
            kind = .head
        } else {
            kind = .other
        }
        guard isValidTarget(UnsafeRawBufferPointer(rebasing: bytes[target]), kind) else {
            return .failure(.invalidTarget)
        }
        return .success(HTTP1RequestLine(method: method, target: target, version: version, kind: kind))
    }

    /// The four forms of RFC 9112 §3.2: origin (`/path?query`), absolute (`http://...`, only
    /// the two schemes a gateway serves), authority (`host:port`, CONNECT only) and asterisk
    /// (`*`, OPTIONS only).
    static func isValidTarget(_ target: UnsafeRawBufferPointer, _ kind: MethodKind) -> Bool {
        if kind == .connect {
            return HTTP1FramingFacts.isValidHost(target, portRequired: true)
        }
        if target[0] == UInt8(ascii: "/") { return true }
        if target.count == 1 && target[0] == UInt8(ascii: "*") { return kind == .options }
        return hasSchemePrefix(target, "http://") || hasSchemePrefix(target, "https://")
    }

    private static func hasSchemePrefix(_ target: UnsafeRawBufferPointer, _ scheme: StaticString) -> Bool {
        let length = scheme.utf8CodeUnitCount
        return target.count > length
            && HTTPFieldList.equalsIgnoringCase(UnsafeRawBufferPointer(rebasing: target[0..<length]), scheme)
    }
}
