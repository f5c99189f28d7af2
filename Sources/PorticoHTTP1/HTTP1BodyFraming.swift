/// How a message's body is delimited, decided from its head (RFC 9112 §6.3).
public enum HTTP1BodyFraming: Sendable, Hashable {
    /// No body: no length given, `Content-Length: 0`, or a response that cannot have one.
    case none
    /// `Content-Length` bytes, more than zero.
    case length(Int64)
    /// The chunked coding; trailers may follow the last chunk.
    case chunked
    /// A response body that ends when the upstream closes the connection.
    case untilClose
}
