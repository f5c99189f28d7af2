/// What route matching needs to know about a request, so the routing module stays free of
/// NIO: the proxy adapts its HTTP/1 and HTTP/2 heads to this.
public protocol RoutableRequest {
    /// Upper-case, as received.
    var method: String { get }
    /// The `Host` header or `:authority`; may include `:port`, any case.
    var authority: String { get }
    /// The path after `PathNormalizer`, without the query.
    var normalizedPath: String { get }
    /// The first value of a header, looked up by its lower-cased name.
    func firstHeaderValue(lowercasedName: String) -> String?
    /// Every value of a header, in order: HTTP/2 may send `cookie` as several fields.
    func headerValues(lowercasedName: String) -> [String]
}

extension RoutableRequest {
    public func headerValues(lowercasedName: String) -> [String] {
        firstHeaderValue(lowercasedName: lowercasedName).map { [$0] } ?? []
    }
}
