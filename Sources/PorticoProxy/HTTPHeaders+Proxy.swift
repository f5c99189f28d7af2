import NIOHTTP1

/// What a request looks like to the proxy beyond its head: where it came from and how.
final class DownstreamConnectionInfo {
    /// `http` or `https`: what `X-Forwarded-Proto` and redirects say.
    let scheme: String
    let listenerName: String
    /// The client's IP address as text, computed once per connection.
    let clientAddress: String
    /// `HTTP/1.1` or `HTTP/2`, for the access log.
    let protocolName: String

    init(scheme: String, listenerName: String, clientAddress: String, protocolName: String) {
        self.scheme = scheme
        self.listenerName = listenerName
        self.clientAddress = clientAddress
        self.protocolName = protocolName
    }
}

/// Problems with a request's framing headers that make it unsafe to forward (request smuggling).
enum FramingError: Error {
    case contentLengthWithTransferEncoding
    case conflictingContentLengths
    case invalidContentLength
    case invalidTransferEncoding
}

extension HTTPHeaders {
    /// Checks `Content-Length` and `Transfer-Encoding` the way RFC 9112 section 6.3 asks of a
    /// proxy: a request that has both, several different lengths, or a coding other than a
    /// final `chunked` is refused rather than guessed at.
    func validateRequestFraming() throws(FramingError) -> Int? {
        var contentLength: Int?
        var hasTransferEncoding = false
        for (name, value) in self {
            if name.utf8.count == 14, name.lowercased() == "content-length" {
                // A list such as "5, 5" is allowed when every member agrees.
                for member in value.split(separator: ",") {
                    let trimmed = member.trimmingASCIISpaces()
                    guard !trimmed.isEmpty, trimmed.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }),
                          let length = Int(trimmed) else { throw .invalidContentLength }
                    if let existing = contentLength, existing != length { throw .conflictingContentLengths }
                    contentLength = length
                }
            } else if name.utf8.count == 17, name.lowercased() == "transfer-encoding" {
                hasTransferEncoding = true
            }
        }
        if hasTransferEncoding {
            if contentLength != nil { throw .contentLengthWithTransferEncoding }
            let codings = self[canonicalForm: "transfer-encoding"]
            guard let last = codings.last, last.lowercased() == "chunked" else { throw .invalidTransferEncoding }
            // `chunked` must be applied exactly once, and last.
            if codings.dropLast().contains(where: { $0.lowercased() == "chunked" }) { throw .invalidTransferEncoding }
        }
        return contentLength
    }

    /// Approximate bytes of the header section as received: names, values and separators.
    var wireSize: Int {
        var total = 0
        for (name, value) in self { total &+= name.utf8.count &+ value.utf8.count &+ 4 }
        return total
    }

    /// Removes the hop-by-hop headers of RFC 9110 section 7.6.1: `Connection` and every header
    /// it names, plus the fixed list. `keepUpgrade` leaves `Upgrade` and `Connection: upgrade`
    /// in place for a request or response that switches protocols.
    mutating func removeHopByHop(keepUpgrade: Bool = false) {
        let named = self[canonicalForm: "connection"]
        if !named.isEmpty {
            for token in named where !(keepUpgrade && token.lowercased() == "upgrade") {
                remove(name: String(token))
            }
            remove(name: "connection")
            if keepUpgrade { add(name: "connection", value: "upgrade") }
        }
        remove(name: "keep-alive")
        remove(name: "te")
        remove(name: "transfer-encoding")
        remove(name: "proxy-connection")
        remove(name: "proxy-authenticate")
        remove(name: "proxy-authorization")
        remove(name: "trailer")
        if !keepUpgrade { remove(name: "upgrade") }
    }

    /// True when the request asks to switch protocols (WebSocket and the like).
    var isUpgradeRequest: Bool {
        contains(name: "upgrade") && self[canonicalForm: "connection"].contains { $0.lowercased() == "upgrade" }
    }
}

extension StringProtocol {
    func trimmingASCIISpaces() -> Substring {
        var slice = Substring(self)
        while let first = slice.first, first == " " || first == "\t" { slice.removeFirst() }
        while let last = slice.last, last == " " || last == "\t" { slice.removeLast() }
        return slice
    }
}
