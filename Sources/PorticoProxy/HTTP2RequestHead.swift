import NIOHPACK
import PorticoHTTP1

/// Why an HTTP/2 request's header block is malformed (RFC 9113 8.1.1): the stream is reset
/// with PROTOCOL_ERROR and nothing of it reaches a backend.
enum HTTP2MalformedRequest: Error, Equatable {
    case pseudoHeaderAfterRegular
    case unknownPseudoHeader
    case duplicatePseudoHeader
    case missingPseudoHeader
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
        var sawRegular = false
        var host: String?
        var hasContentLength = false
        var regular = HTTPFieldList()
        regular.reserveCapacity(fields: fields.count + 2, bytes: 512)
        for (name, value, _) in fields {
            if name.utf8.first == UInt8(ascii: ":") {
                guard !sawRegular else { throw .pseudoHeaderAfterRegular }
                guard Self.isValidPseudoValue(value) else { throw .invalidPseudoHeaderValue }
                switch name {
                case ":method": try Self.setOnce(&method, value)
                case ":scheme": try Self.setOnce(&scheme, value)
                case ":path": try Self.setOnce(&path, value)
                case ":authority": try Self.setOnce(&authority, value)
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
            default:
                break
            }
            regular.append(name: name, value: value)
        }
        guard let method, scheme != nil, let path, !path.isEmpty else { throw .missingPseudoHeader }
        if let authority, let host, !authority.equalsASCIICaseInsensitive(other: host) {
            // RFC 9113 8.3.1: routing and the upstream must not see two different hosts.
            throw .hostDiffersFromAuthority
        }
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

    private static func setOnce(_ slot: inout String?, _ value: String) throws(HTTP2MalformedRequest) {
        guard slot == nil else { throw .duplicatePseudoHeader }
        slot = value
    }

    /// No CTL, space or DEL: `:path` becomes the HTTP/1 request line.
    private static func isValidPseudoValue(_ value: String) -> Bool {
        !value.utf8.contains { $0 <= 0x20 || $0 == 0x7F }
    }

    /// A token with no uppercase letter (RFC 9113 8.2.1, RFC 9110 5.6.2).
    private static func isLowercaseToken(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.allSatisfy { byte in
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                return true
            case UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"), UInt8(ascii: "&"),
                 UInt8(ascii: "'"), UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."),
                 UInt8(ascii: "^"), UInt8(ascii: "_"), UInt8(ascii: "`"), UInt8(ascii: "|"), UInt8(ascii: "~"):
                return true
            default:
                return false
            }
        }
    }

    /// No NUL, CR or LF anywhere, no space or tab at either end (RFC 9113 8.2.1).
    private static func isValidValue(_ value: String) -> Bool {
        let bytes = value.utf8
        if let first = bytes.first, first == 0x20 || first == 0x09 { return false }
        if let last = bytes.last, last == 0x20 || last == 0x09 { return false }
        return !bytes.contains { $0 == 0x00 || $0 == 0x0A || $0 == 0x0D }
    }
}
