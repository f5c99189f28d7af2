import Foundation
import PorticoAuth
import PorticoConfig
import PorticoHTTP1

/// The request to explain, checked: what `portico explain METHOD URL -H ...` and admin
/// `POST /explain` are given.
///
/// The URL is read as curl sends it: `http://host:port/path?query` becomes the target
/// `/path?query` with `Host: host:port` (unless a `Host` header is given), and the scheme and
/// port pick the listener. A bare `/path?query` (or `*`) is sent as it is, with `Host:
/// localhost` when no `Host` header is given.
public struct ExplainRequest: Sendable {
    public var method: String
    public var url: String
    /// The request-target the gateway would receive.
    public var target: String
    public var scheme: String
    /// The URL's port, when it names one: the listener bound to it takes the request.
    public var port: Int?
    public var headers: [(name: String, value: String)]
    public var peer: PeerIdentity?
    /// The listener to explain on; nil: the one the URL's port or scheme points to.
    public var listener: String?
    /// The client's address, as rate limits key on it and `X-Forwarded-For` carries it.
    public var clientAddress = "127.0.0.1"

    /// Checks each part; a part that a client could not send is an `ExplainInputError`.
    ///
    /// - Parameters:
    ///   - headers: `Name: value` lines, as curl's `-H` takes them.
    ///   - certificatePEM: the client certificate (PEM), for mTLS principals.
    public init(method: String, url: String, headers: [String] = [], certificatePEM: String? = nil,
                listener: String? = nil) throws(ExplainInputError) {
        guard !method.isEmpty, method.utf8.allSatisfy(HTTPToken.isTokenByte) else {
            throw ExplainInputError("method '\(method)' is not an HTTP method (a token such as GET or POST)")
        }
        self.method = method
        self.url = url
        self.listener = listener

        var parsed: [(name: String, value: String)] = []
        for line in headers {
            guard let colon = line.firstIndex(of: ":") else {
                throw ExplainInputError("header '\(line)' is not 'Name: value'")
            }
            let name = String(line[..<colon])
            let value = String(line[line.index(after: colon)...].drop { $0 == " " || $0 == "\t" })
                .trimmingTrailing { $0 == " " || $0 == "\t" }
            guard !name.isEmpty, name.utf8.allSatisfy(HTTPToken.isTokenByte) else {
                throw ExplainInputError("header name '\(name)' is not a token (letters, digits and !#$%&'*+-.^_`|~)")
            }
            guard HTTPFieldList.isValidValue(value.utf8) else {
                throw ExplainInputError("header '\(name)' has a value with a control character")
            }
            parsed.append((name, value))
        }

        // A fragment never leaves the client (curl drops it too).
        let url = url.firstIndex(of: "#").map { String(url[..<$0]) } ?? url
        if url == "*" || url.hasPrefix("/") {
            scheme = "http"
            port = nil
            target = url
            if !parsed.contains(where: { $0.name.lowercased() == "host" }) { parsed.insert(("Host", "localhost"), at: 0) }
        } else {
            guard let separator = url.range(of: "://") else {
                throw ExplainInputError("URL '\(url)' is neither http(s)://host/path nor /path")
            }
            let scheme = url[..<separator.lowerBound].lowercased()
            guard scheme == "http" || scheme == "https" else {
                throw ExplainInputError("URL '\(url)' must use http or https, not \(scheme)")
            }
            let rest = url[separator.upperBound...]
            let authorityEnd = rest.firstIndex { $0 == "/" || $0 == "?" } ?? rest.endIndex
            let authority = String(rest[..<authorityEnd])
            guard !authority.isEmpty, !authority.contains("@"), HostHeader.isValid(authority) else {
                throw ExplainInputError("URL '\(url)' has no valid host[:port]")
            }
            var path = String(rest[authorityEnd...])
            if !path.hasPrefix("/") { path = "/" + path }
            self.scheme = scheme
            self.target = path
            let (_, portText) = Self.splitPort(authority)
            if let portText {
                guard let number = Int(portText), (1...65535).contains(number) else {
                    throw ExplainInputError("URL '\(url)' has an invalid port")
                }
                port = number
            } else {
                port = nil
            }
            if !parsed.contains(where: { $0.name.lowercased() == "host" }) { parsed.insert(("Host", authority), at: 0) }
        }
        self.headers = parsed

        if let certificatePEM {
            peer = try Self.peer(fromPEM: certificatePEM)
        } else {
            peer = nil
        }
    }

    /// The identity of the first certificate of a PEM document.
    static func peer(fromPEM pem: String) throws(ExplainInputError) -> PeerIdentity {
        let begin = "-----BEGIN CERTIFICATE-----"
        let end = "-----END CERTIFICATE-----"
        guard let start = pem.range(of: begin), let stop = pem.range(of: end, range: start.upperBound..<pem.endIndex),
              let der = Data(base64Encoded: String(pem[start.upperBound..<stop.lowerBound]), options: .ignoreUnknownCharacters)
        else {
            throw ExplainInputError("the client certificate is not a PEM certificate (-----BEGIN CERTIFICATE-----)")
        }
        do {
            return try PeerIdentity(derEncoded: Array(der))
        } catch {
            throw ExplainInputError("the client certificate cannot be read: \(error)")
        }
    }

    /// `host:8080` → ("host", "8080"); `[::1]:8443` → ("[::1]", "8443").
    static func splitPort(_ authority: String) -> (host: Substring, port: Substring?) {
        if authority.hasPrefix("["), let close = authority.firstIndex(of: "]") {
            let after = authority.index(after: close)
            guard after < authority.endIndex, authority[after] == ":" else { return (authority[...close], nil) }
            return (authority[...close], authority[authority.index(after: after)...])
        }
        guard let colon = authority.firstIndex(of: ":") else { return (authority[...], nil) }
        return (authority[..<colon], authority[authority.index(after: colon)...])
    }
}

extension String {
    fileprivate func trimmingTrailing(while predicate: (Character) -> Bool) -> String {
        var result = self
        while let last = result.last, predicate(last) { result.removeLast() }
        return result
    }
}
