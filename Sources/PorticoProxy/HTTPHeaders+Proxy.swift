import NIOHTTP1
import PorticoAuth
import PorticoConfig

/// What a request looks like to the proxy beyond its head: where it came from and how.
final class DownstreamConnectionInfo {
    /// `http` or `https`: what `X-Forwarded-Proto` and redirects say.
    let scheme: String
    let listenerName: String
    /// The client's IP address as text, computed once per connection.
    let clientAddress: String
    /// `HTTP/1.1` or `HTTP/2`, for the access log.
    let protocolName: String
    let isHTTP1: Bool
    /// `for=ADDRESS;host="`: the part of `Forwarded` that is the same for every request of the
    /// connection, made once (an IPv6 address is quoted and bracketed, RFC 7239 section 6).
    let forwardedPrefix: String
    /// `";proto=SCHEME`: the rest of `Forwarded` after the host.
    let forwardedSuffix: String
    /// The verified client certificate's identity (mTLS), for authorization rules.
    let principal: String?
    /// The listener's `headersWithUnderscores`.
    let underscoreHeaders: UnderscoreHeaderAction
    /// `x-forwarded-client-cert` for the backend, made once per connection (Envoy's format).
    let forwardedClientCertificate: String?

    init(scheme: String, listenerName: String, clientAddress: String, protocolName: String, peer: PeerIdentity? = nil,
         underscoreHeaders: UnderscoreHeaderAction = .drop) {
        self.scheme = scheme
        self.underscoreHeaders = underscoreHeaders
        self.principal = peer?.principal
        self.forwardedClientCertificate = peer?.forwardedClientCertificate()
        self.listenerName = listenerName
        self.clientAddress = clientAddress
        self.protocolName = protocolName
        self.isHTTP1 = protocolName == "HTTP/1.1"
        let node = clientAddress.utf8.contains(UInt8(ascii: ":")) ? "\"[" + clientAddress + "]\"" : clientAddress
        self.forwardedPrefix = "for=" + node + ";host=\""
        self.forwardedSuffix = "\";proto=" + scheme
    }

    /// The `Forwarded` header value for a request to `authority` (one allocation).
    func forwardedValue(authority: String) -> String {
        var value = ""
        value.reserveCapacity(forwardedPrefix.utf8.count + authority.utf8.count + forwardedSuffix.utf8.count)
        value += forwardedPrefix
        value += authority
        value += forwardedSuffix
        return value
    }
}

/// Problems with a request's framing headers that make it unsafe to forward (request smuggling).
enum FramingError: Error, Equatable {
    case contentLengthWithTransferEncoding
    case conflictingContentLengths
    case invalidContentLength
    /// A list that is not a list of codings (`,chunked`, `chunked;x`), `chunked` not last or
    /// twice, or more than one `Transfer-Encoding` line.
    case invalidTransferEncoding
    /// `Transfer-Encoding` on HTTP/1.0, which has no chunked framing (RFC 9112 6.1).
    case transferEncodingOnHTTP10
    /// A coding Portico does not implement (`gzip, chunked`): forwarding its bytes as plain
    /// chunks would change the body, so the request gets 501 (RFC 9112 6.1).
    case unsupportedTransferCoding

    /// 501 for a coding Portico does not implement, 400 for everything else.
    var status: HTTPResponseStatus {
        self == .unsupportedTransferCoding ? .notImplemented : .badRequest
    }
}

extension HTTPHeaders {
    /// Removes the hop-by-hop headers of RFC 9110 section 7.6.1: `Connection` and every header
    /// it names, plus the fixed list. `keepUpgrade` leaves `Upgrade` and `Connection: upgrade`
    /// in place for a request or response that switches protocols.
    mutating func removeHopByHop(keepUpgrade: Bool = false) {
        // Most requests carry none of these: one scan, and no copy of the headers, for them.
        guard contains(where: { Self.isHopByHopName($0.name) }) else { return }
        var named: [Substring] = []
        var hadConnection = false
        for (name, value) in self where name.equalsASCIICaseInsensitive("connection") {
            hadConnection = true
            // Token by token, without `split`'s array: `Connection: keep-alive` is on most
            // responses.
            var rest = value[...]
            while !rest.isEmpty {
                let comma = rest.firstIndex(of: ",") ?? rest.endIndex
                let token = rest[..<comma].trimmingASCIISpaces()
                if !token.isEmpty, !Self.isHopByHopName(token) { named.append(token) }
                rest = comma == rest.endIndex ? rest[comma...] : rest[rest.index(after: comma)...]
            }
        }
        // Removed in place, a name at a time (`remove` takes every field of the name, in any
        // case): when the headers are not shared that allocates nothing, where building a new
        // list cost two allocations on every response, whose `Connection` is common.
        while let field = first(where: {
            Self.isHopByHopName($0.name) && !(keepUpgrade && $0.name.equalsASCIICaseInsensitive("upgrade"))
        }) {
            remove(name: field.name)
        }
        for name in named { remove(name: String(name)) }
        if keepUpgrade && hadConnection { add(name: "connection", value: "upgrade") }
    }

    /// Whether `name` is `Connection` or one of the fixed hop-by-hop names (any case).
    private static func isHopByHopName<S: StringProtocol>(_ name: S) -> Bool {
        switch name.utf8.count {
        case 2: return name.equalsASCIICaseInsensitive("te")
        case 7: return name.equalsASCIICaseInsensitive("upgrade") || name.equalsASCIICaseInsensitive("trailer")
        case 10: return name.equalsASCIICaseInsensitive("connection") || name.equalsASCIICaseInsensitive("keep-alive")
        case 16: return name.equalsASCIICaseInsensitive("proxy-connection")
        case 17: return name.equalsASCIICaseInsensitive("transfer-encoding")
        case 18: return name.equalsASCIICaseInsensitive("proxy-authenticate")
        case 19: return name.equalsASCIICaseInsensitive("proxy-authorization")
        default: return false
        }
    }

    /// Whether a `connection` field lists `close`. The tokens are split (an allocation) only
    /// when there is such a field at all.
    var saysConnectionClose: Bool {
        contains(name: "connection") && self[canonicalForm: "connection"].contains { $0.lowercased() == "close" }
    }
}

extension StringProtocol {
    /// Compares with `other` ignoring the case of ASCII letters on both sides.
    func equalsASCIICaseInsensitive<Other: StringProtocol>(other: Other) -> Bool {
        guard utf8.count == other.utf8.count else { return false }
        return zip(utf8, other.utf8).allSatisfy { a, b in
            (a >= 65 && a <= 90 ? a | 0x20 : a) == (b >= 65 && b <= 90 ? b | 0x20 : b)
        }
    }

    /// Compares with a lower-case ASCII `lowercase` byte by byte, ignoring the case of `self`.
    func equalsASCIICaseInsensitive(_ lowercase: StaticString) -> Bool {
        guard utf8.count == lowercase.utf8CodeUnitCount else { return false }
        return lowercase.withUTF8Buffer { expected in
            var index = 0
            for byte in utf8 {
                let folded = byte >= 65 && byte <= 90 ? byte | 0x20 : byte
                if folded != expected[index] { return false }
                index += 1
            }
            return true
        }
    }

    func trimmingASCIISpaces() -> Substring {
        var slice = Substring(self)
        while let first = slice.first, first == " " || first == "\t" { slice.removeFirst() }
        while let last = slice.last, last == " " || last == "\t" { slice.removeLast() }
        return slice
    }
}
