/// Host-name handling shared by matching, shadowing and redirects, so that "the same host"
/// means the same thing in all three.
enum HostName {
    /// The canonical form of a host from the config: lower-cased, without IPv6 brackets and
    /// without a trailing dot (`Example.COM.` and `example.com` name the same host).
    static func canonical(_ host: String) -> String {
        var result = host.lowercased()
        if result.hasPrefix("["), result.hasSuffix("]") {
            result = String(result.dropFirst().dropLast())
        }
        if result.hasSuffix(".") { result.removeLast() }
        return result
    }

    /// The host part of an authority: the port and IPv6 brackets removed, one trailing dot
    /// removed. Case is left as received; comparisons fold it.
    static func host(in authority: UnsafeBufferPointer<UInt8>) -> UnsafeBufferPointer<UInt8> {
        var start = 0
        var end = authority.count
        if end > 0 && authority[0] == ASCII.openBracket {
            // `[::1]:8443`: the colons inside the brackets are not a port separator.
            var close = 1
            while close < end && authority[close] != ASCII.closeBracket { close += 1 }
            if close < end {
                start = 1
                end = close
            }
        } else {
            var colon = 0
            while colon < end && authority[colon] != ASCII.colon { colon += 1 }
            end = colon
        }
        if end > start && authority[end - 1] == ASCII.dot { end -= 1 }
        return UnsafeBufferPointer(rebasing: authority[start..<end])
    }

    /// Splits an authority into the host as written (brackets kept) and the port, if any.
    static func split(authority: String) -> (host: Substring, port: Substring?) {
        if authority.hasPrefix("["), let close = authority.firstIndex(of: "]") {
            let afterClose = authority.index(after: close)
            let host = authority[..<afterClose]
            if afterClose < authority.endIndex, authority[afterClose] == ":" {
                return (host, authority[authority.index(after: afterClose)...])
            }
            return (host, nil)
        }
        if let colon = authority.firstIndex(of: ":") {
            return (authority[..<colon], authority[authority.index(after: colon)...])
        }
        return (authority[...], nil)
    }

    /// True when `host` (any case) equals `canonical` (lower-case) byte for byte.
    static func equals(_ host: UnsafeBufferPointer<UInt8>, canonical: [UInt8]) -> Bool {
        guard host.count == canonical.count else { return false }
        for index in 0..<host.count where lowercase(host[index]) != canonical[index] {
            return false
        }
        return true
    }

    /// True when `host` ends with `suffix` (lower-case, starting with '.') and has at least one
    /// more byte before it, so `.example.com` does not match `example.com` itself.
    static func hasSuffix(_ host: UnsafeBufferPointer<UInt8>, canonicalSuffix suffix: [UInt8]) -> Bool {
        guard host.count > suffix.count else { return false }
        let offset = host.count - suffix.count
        for index in 0..<suffix.count where lowercase(host[offset + index]) != suffix[index] {
            return false
        }
        return true
    }

    private static func lowercase(_ byte: UInt8) -> UInt8 {
        byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") ? byte + 32 : byte
    }
}
