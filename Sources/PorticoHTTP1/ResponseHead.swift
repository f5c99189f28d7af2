import NIOCore

/// A response head as the request path reads and writes it, whichever protocol carries it:
/// an upstream's answer parsed in place (the fields are not copied), or an answer Portico
/// writes itself.
public struct ResponseHead: Sendable {
    /// The status code, 100 to 599.
    public var status: Int
    /// The reason phrase as the upstream sent it; nil for the code's own phrase. HTTP/2 has
    /// none.
    public var reason: String?
    /// The version of the client's connection the head is written to (for HTTP/1: the status
    /// line's version, and whether a body without a length may run until the close).
    public var version: HTTPProtocolVersion
    public var fields: HTTPFieldList
    /// Whether the connection the response came on may carry another exchange.
    public var keepAlive: Bool

    public init(status: Int, reason: String? = nil, version: HTTPProtocolVersion = .http1_1,
                fields: HTTPFieldList = HTTPFieldList(), keepAlive: Bool = true) {
        self.status = status
        self.reason = reason
        self.version = version
        self.fields = fields
        self.keepAlive = keepAlive
    }

    /// The head of a parsed HTTP/1 response; the fields are not copied.
    public init(_ head: HTTP1ResponseHead) {
        self.init(
            status: head.status, reason: head.reason, version: head.version == .http1_1 ? .http1_1 : .http1_0,
            fields: head.fields, keepAlive: head.keepAlive
        )
    }

    /// A 1xx other than 101: the final response follows.
    public var isInformational: Bool { self.status >= 100 && self.status < 200 && self.status != 101 }
}

/// A response as it travels through the proxy, part by part: from an upstream connection to
/// the `ProxyHandler`, and from there to the client's connection or stream.
public enum ResponsePart: Sendable {
    case head(ResponseHead)
    case body(ByteBuffer)
    /// The end of the response, with its trailers if it had any.
    case end(HTTPFieldList?)
}
