import PorticoAuth
import PorticoConfig
import PorticoHTTP1

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

    /// The last `Forwarded` value made, and the authority it was made for: a connection's
    /// requests nearly always name one host, so the value is built once per connection. Read
    /// and written only on the connection's event loop.
    private var lastForwarded: (authority: String, value: String)?

    /// The `Forwarded` header value for a request to `authority`.
    func forwardedValue(authority: String) -> String {
        if let last = lastForwarded, last.authority == authority { return last.value }
        let value = makeForwardedValue(authority: authority)
        lastForwarded = (authority, value)
        return value
    }

    private func makeForwardedValue(authority: String) -> String {
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
