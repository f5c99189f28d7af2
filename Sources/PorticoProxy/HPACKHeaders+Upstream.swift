import NIOHPACK
import PorticoHTTP1
import PorticoRouting

/// An HTTP/2 upstream's answer that cannot be relayed: the stream is reset and the exchange
/// hears of it as a reset (502, or a retry).
enum HTTP2UpstreamMalformedResponse: Error {
    case missingStatus
    case invalidStatus
    case pseudoHeader
    case invalidFieldName
    case invalidFieldValue
    case connectionSpecificField
}

extension HPACKHeaders {
    /// The header block of a request to an HTTP/2 upstream, from the head the request path
    /// made for an upstream: the pseudo-headers from its method, target and `Host`, then its
    /// fields less the connection-specific ones (RFC 9113 8.2.2), which HTTP/2 forbids, and
    /// `Host`, which `:authority` carries. The body's HTTP/1 framing (`transfer-encoding`)
    /// goes too: DATA frames frame it.
    ///
    /// A gRPC call says `te: trailers`, which gRPC servers require (the gRPC HTTP/2 protocol);
    /// HTTP/1's hop-by-hop rules removed it from the upstream head, so it is said again.
    init(upstreamRequest head: RequestHead, scheme: String) {
        self.init()
        reserveCapacity(head.fields.count + 5)
        let fields = head.fields
        var authority: String?
        var isGRPC = false
        if let index = fields.firstIndex(of: "host") { authority = fields[index].value }
        if let index = fields.firstIndex(of: "content-type") {
            isGRPC = fields[index].withUnsafeValueBytes { GRPCContentType(bytes: $0) } == .grpc
        }
        add(name: ":method", value: head.method)
        if head.method == "CONNECT" {
            add(name: ":authority", value: head.target)
        } else {
            add(name: ":scheme", value: scheme)
            add(name: ":path", value: head.target)
            if let authority { add(name: ":authority", value: authority) }
        }
        for index in 0..<fields.count {
            let field = fields[index]
            if field.hasName("host") || Self.isConnectionSpecific(field) || field.hasName("te") { continue }
            add(name: field.lowercasedName, value: field.value,
                indexing: Self.isUniquePerRequest(field) ? .nonIndexable : .indexable)
        }
        if isGRPC { add(name: "te", value: "trailers") }
    }

    /// A field whose value is new on every request (the request id the forwarding headers
    /// add, a trace context). Added to the connection's HPACK table, each would push out an
    /// entry that later requests could have used, and every lookup scans the table: literal
    /// without indexing (RFC 7541 6.2.2) keeps the table to what repeats.
    static func isUniquePerRequest(_ field: HTTPField) -> Bool {
        switch field.nameLength {
        case 11: return field.hasName("traceparent")
        case 12: return field.hasName("x-request-id")
        default: return false
        }
    }

    /// Request trailers for an HTTP/2 upstream: regular fields, lowercased.
    init(upstreamTrailers trailers: HTTPFieldList) {
        self.init()
        reserveCapacity(trailers.count)
        for index in 0..<trailers.count {
            let field = trailers[index]
            if Self.isConnectionSpecific(field) { continue }
            add(name: field.lowercasedName, value: field.value)
        }
    }
}

extension ResponseHead {
    /// The head of an HTTP/2 upstream's answer, checked as RFC 9113 8.2-8.3 asks (NIO's own
    /// check of header blocks is off on upstream connections, see `HTTP2UpstreamPool`): one
    /// `:status` and no other pseudo-header, before every regular field; lowercase token
    /// names; none of the connection-specific fields; no CR, LF or NUL in a value, which would
    /// split the HTTP/1 response it is written in.
    init(http2Fields fields: HPACKHeaders) throws(HTTP2UpstreamMalformedResponse) {
        var status: Int?
        var list = HTTPFieldList()
        list.reserveCapacity(fields: fields.count, bytes: 512)
        for (name, value, _) in fields {
            if name.utf8.first == UInt8(ascii: ":") {
                guard name == ":status", status == nil, list.count == 0 else { throw .pseudoHeader }
                guard value.utf8.count == 3, let code = Int(value), code >= 100, code <= 599 else { throw .invalidStatus }
                status = code
                continue
            }
            try list.appendHTTP2Field(name: name, value: value)
        }
        guard let status else { throw .missingStatus }
        self.init(status: status, version: .http2, fields: list)
    }

    /// No NUL, CR or LF (RFC 9113 8.2.1).
    static func isRelayable(_ value: String) -> Bool {
        var value = value
        return value.withUTF8 { bytes in
            for index in 0..<bytes.count where bytes[index] == 0 || bytes[index] == 0x0A || bytes[index] == 0x0D {
                return false
            }
            return true
        }
    }
}

extension HTTPFieldList {
    /// The trailers of an HTTP/2 upstream's answer: regular fields only.
    init(http2Trailers fields: HPACKHeaders) throws(HTTP2UpstreamMalformedResponse) {
        self.init()
        for (name, value, _) in fields {
            guard name.utf8.first != UInt8(ascii: ":") else { throw .pseudoHeader }
            try appendHTTP2Field(name: name, value: value)
        }
    }

    /// Appends a regular field of an upstream's header block, under RFC 9113 8.2's rules.
    fileprivate mutating func appendHTTP2Field(name: String, value: String) throws(HTTP2UpstreamMalformedResponse) {
        guard RequestHead.isLowercaseToken(name) else { throw .invalidFieldName }
        guard ResponseHead.isRelayable(value) else { throw .invalidFieldValue }
        if HPACKHeaders.isConnectionSpecific(name) { throw .connectionSpecificField }
        append(name: name, value: value)
    }
}
