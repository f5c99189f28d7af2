import NIOCore

/// A request head as every layer of the request path reads it, whichever protocol brought it:
/// HTTP/1 builds it from a parsed head without copying the fields, HTTP/2 from the decoded
/// header block.
///
/// The fields stay an `HTTPFieldList` (offsets into the received bytes) and are compared
/// without allocating; the method and target are `String`s because every request needs them
/// as text (routing, the normalizer, the log), and a method is short enough to be stored
/// inline.
public struct RequestHead: Sendable {
    public var method: String
    /// The request-target: origin form (`/a?b`), absolute form, `*`, or an authority for CONNECT.
    public var target: String
    public var version: HTTPProtocolVersion
    public var fields: HTTPFieldList
    /// Whether the client's connection may carry another request after this one (always for
    /// HTTP/2, whose streams end without ending the connection).
    public var keepAlive: Bool

    public init(method: String, target: String, version: HTTPProtocolVersion, fields: HTTPFieldList, keepAlive: Bool = true) {
        self.method = method
        self.target = target
        self.version = version
        self.fields = fields
        self.keepAlive = keepAlive
    }

    /// The head of a parsed HTTP/1 request; the fields are not copied.
    public init(_ head: HTTP1RequestHead) {
        self.init(
            method: head.method, target: head.target,
            version: head.version == .http1_1 ? .http1_1 : .http1_0,
            fields: head.fields, keepAlive: head.keepAlive
        )
    }
}

/// The protocol a request or response travels in, for what differs between them: Host rules,
/// chunked framing, and the version written on an HTTP/1 status line.
public enum HTTPProtocolVersion: Sendable, Hashable {
    case http1_0
    case http1_1
    case http2
}

/// A request as it travels through the proxy, part by part: from a client connection to the
/// `ProxyHandler`, and from there to an upstream connection.
public enum RequestPart: Sendable {
    case head(RequestHead)
    case body(ByteBuffer)
    /// The end of the request, with its trailers if it had any.
    case end(HTTPFieldList?)
}
