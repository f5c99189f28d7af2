/// The protocol a service's endpoints (or a function's workers) are spoken to in.
public enum UpstreamProtocol: String, Sendable, Hashable, CaseIterable {
    case http1
    /// HTTP/2 with prior knowledge, no TLS (RFC 9113 3.3).
    case h2c
    /// HTTP/2 over TLS; ALPN must agree on `h2`.
    case h2
    /// Over TLS, offers `h2` and `http/1.1` by ALPN and speaks what the endpoint chose.
    case auto

    public var isHTTP2: Bool { self == .h2c || self == .h2 }
}
