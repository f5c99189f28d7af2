import NIOHPACK
import PorticoConfig
import PorticoHTTP1

/// Why an HTTP/2 request's header block is malformed (RFC 9113 8.1.1): the stream is reset
/// with PROTOCOL_ERROR and nothing of it reaches a backend.
enum HTTP2MalformedRequest: Error, Equatable {
    case pseudoHeaderAfterRegular
    case unknownPseudoHeader
    case duplicatePseudoHeader
    case missingPseudoHeader
    case schemeOrPathOnConnect
    case invalidPseudoHeaderValue
    case invalidFieldName
    case invalidFieldValue
    case connectionSpecificField
    case teOtherThanTrailers
    case hostDiffersFromAuthority
}

extension RequestHead {
    /// The request an HTTP/2 header block makes, as the request path reads it, once every field
    /// has been checked: a field that HTTP/1 would read differently (a CR, LF or NUL, a
    /// connection-specific header, a space at either end of a value) must not get there, as
    /// it is where HTTP/2-to-HTTP/1 request smuggling starts.
    ///
    /// As NIO's HTTP/2-to-HTTP/1 codec did: `:authority` becomes `Host` when there is none, and
    /// a request that may carry a body but has no `content-length` gets `transfer-encoding:
    /// chunked` (or `content-length: 0` when the HEADERS frame ended the stream), so the
    /// upstream request is framed.
    init(http2Fields fields: HPACKHeaders, endStream: Bool) throws(HTTP2MalformedRequest) {
        var method: String?
        var scheme: String?
        var path: String?
        var authority: String?
        var connectProtocol: String?
        var sawRegular = false
        var host: String?
        var hasContentLength = false
        // RFC 9113 8.2.3: an HTTP/2 client may split `cookie` into several fields; an HTTP/1
        // server expects one, so they are joined with "; " (many servers read only one line).
        var cookies: [String] = []
        var regular = HTTPFieldList()
        // Room for `host` and a joined cookie, and for what the proxy adds to the upstream head
        // the list becomes (framing, the forwarding headers): made once here, never grown.
        regular.reserveCapacity(fields: fields.count + 10, bytes: 1024)
        for (name, value, _) in fields {
            if name.utf8.first == UInt8(ascii: ":") {
                guard !sawRegular else { throw .pseudoHeaderAfterRegular }
                guard Self.isValidPseudoValue(value) else { throw .invalidPseudoHeaderValue }
                switch name {
                case ":method":
                    // A method becomes the first word of an HTTP/1 request line: a token only.
                    guard Self.isToken(value) else { throw .invalidPseudoHeaderValue }
                    try Self.setOnce(&method, value)
                case ":scheme": try Self.setOnce(&scheme, value)
                case ":path": try Self.setOnce(&path, value)
                case ":authority": try Self.setOnce(&authority, value)
                case ":protocol":
                    guard Self.isToken(value) else { throw .invalidPseudoHeaderValue }
                    try Self.setOnce(&connectProtocol, value)
                default: throw .unknownPseudoHeader
                }
                continue
            }
            sawRegular = true
            guard Self.isLowercaseToken(name) else { throw .invalidFieldName }
            guard Self.isValidValue(value) else { throw .invalidFieldValue }
            if HPACKHeaders.isConnectionSpecific(name) { throw .connectionSpecificField }
            switch name {
            case "te":
                guard value == "trailers" else { throw .teOtherThanTrailers }
            case "host":
                guard host == nil else { throw .hostDiffersFromAuthority }
                host = value
            case "content-length":
                hasContentLength = true
            case "cookie":
                cookies.append(value)
                continue
            default:
                break
            }
            regular.append(name: name, value: value)
        }
        if !cookies.isEmpty { regular.append(name: "cookie", value: cookies.joined(separator: "; ")) }
        if let authority, let host, !authority.equalsASCIICaseInsensitive(other: host) {
            // RFC 9113 8.3.1: routing and the upstream must not see two different hosts.
            throw .hostDiffersFromAuthority
        }
        if let connectProtocol {
            // Extended CONNECT (RFC 8441 4): a CONNECT with all four pseudo-headers and the
            // protocol to speak on the stream. To an HTTP/1.1 upstream it is the `Upgrade`
            // request RFC 6455 describes, which the proxy's upgrade path takes from here.
            // `:protocol` on any other method is not a pseudo-header HTTP/2 knows (RFC 8441 4).
            guard method == "CONNECT" else { throw .unknownPseudoHeader }
            guard scheme != nil, let path, !path.isEmpty, let authority else { throw .missingPseudoHeader }
            if host == nil { regular.append(name: "host", value: authority) }
            regular.append(name: "upgrade", value: connectProtocol)
            regular.append(name: "connection", value: "upgrade")
            if connectProtocol.equalsASCIICaseInsensitive(other: "websocket") && !regular.contains("sec-websocket-key") {
                regular.append(name: "sec-websocket-key", value: Self.webSocketKey())
            }
            self.init(method: "GET", target: path, version: .http2, fields: regular)
            return
        }
        // RFC 9113 8.5: a CONNECT that is not extended names only its `:authority`.
        if method == "CONNECT", scheme != nil || path != nil { throw .schemeOrPathOnConnect }
        guard let method, scheme != nil, let path, !path.isEmpty else { throw .missingPseudoHeader }
        // Appended after the client's fields: the order of differently named fields carries
        // no meaning (RFC 9110 5.3).
        if host == nil, let authority { regular.append(name: "host", value: authority) }
        switch method {
        case "GET", "HEAD", "DELETE", "CONNECT", "TRACE":
            break
        default:
            if !hasContentLength {
                if endStream {
                    regular.append(name: "content-length", value: "0")
                } else {
                    regular.append(name: "transfer-encoding", value: "chunked")
                }
            }
        }
        self.init(method: method, target: path, version: .http2, fields: regular)
    }

    /// Trailers of an HTTP/2 request: regular fields only, under the same rules.
    static func http2Trailers(_ fields: HPACKHeaders) throws(HTTP2MalformedRequest) -> HTTPFieldList {
        var trailers = HTTPFieldList()
        for (name, value, _) in fields {
            guard name.utf8.first != UInt8(ascii: ":") else { throw .pseudoHeaderAfterRegular }
            guard isLowercaseToken(name) else { throw .invalidFieldName }
            guard isValidValue(value) else { throw .invalidFieldValue }
            if HPACKHeaders.isConnectionSpecific(name) { throw .connectionSpecificField }
            trailers.append(name: name, value: value)
        }
        return trailers
    }

    /// A `Sec-WebSocket-Key` for the upstream (RFC 6455 4.1): 16 random bytes in base64. An
    /// HTTP/2 client sends none, as the stream needs no handshake of its own.
    private static func webSocketKey() -> String {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<16).map { _ in UInt8.random(in: 0...255, using: &generator) }
        var key: [UInt8] = []
        Base64.encode(bytes) { key.append($0) }
        return String(decoding: key, as: UTF8.self)
    }

    private static func setOnce(_ slot: inout String?, _ value: String) throws(HTTP2MalformedRequest) {
        guard slot == nil else { throw .duplicatePseudoHeader }
        slot = value
    }

    /// No CTL, space or DEL: `:path` becomes the HTTP/1 request line.
    ///
    /// These checks are plain loops over the UTF-8 bytes: `contains` or `allSatisfy` over a
    /// `String.UTF8View` is generic code, which unspecialized allocates for every byte.
    private static func isValidPseudoValue(_ value: String) -> Bool {
        var value = value
        return value.withUTF8 { bytes in
            for index in 0..<bytes.count where bytes[index] <= 0x20 || bytes[index] == 0x7F { return false }
            return true
        }
    }

    /// A token with no uppercase letter (RFC 9113 8.2.1, RFC 9110 5.6.2).
    static func isLowercaseToken(_ name: String) -> Bool {
        var name = name
        return name.withUTF8 { bytes in
            guard !bytes.isEmpty else { return false }
            for index in 0..<bytes.count {
                let byte = bytes[index]
                if !HTTPToken.isTokenByte(byte) || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z")) { return false }
            }
            return true
        }
    }

    /// No NUL, CR or LF anywhere, no space or tab at either end (RFC 9113 8.2.1), and none of
    /// the other control bytes but HTAB, nor DEL: HTTP/1 forbids them in a field value (RFC
    /// 9110 5.5), so a request carrying one could only fail at the upstream writer, after
    /// routing and the policies, and be counted as the endpoint's failure.
    private static func isValidValue(_ value: String) -> Bool {
        var value = value
        return value.withUTF8 { bytes in
            guard let first = bytes.first, let last = bytes.last else { return true }
            if first == 0x20 || first == 0x09 || last == 0x20 || last == 0x09 { return false }
            for index in 0..<bytes.count {
                let byte = bytes[index]
                if (byte < 0x20 && byte != 0x09) || byte == 0x7F { return false }
            }
            return true
        }
    }

    /// RFC 9110 `token`, as a method must be.
    private static func isToken(_ value: String) -> Bool {
        var value = value
        return value.withUTF8 { bytes in
            guard !bytes.isEmpty else { return false }
            for index in 0..<bytes.count where !HTTPToken.isTokenByte(bytes[index]) { return false }
            return true
        }
    }
}
