import PorticoHTTP1

/// The host the request is for: the absolute-form target's authority, which replaces `Host`,
/// or `Host`.
final class AuthorityCheck: EdgeCheck {
    func check(_ request: inout EdgeRequest) -> EdgeVerdict {
        let fromTarget = request.target?.authority
        request.authority = fromTarget ?? request.head.fields.firstValue(of: "host") ?? ""
        if request.authority.isEmpty && request.head.version != .http1_0 {
            // HTTP/1.1 requires Host (RFC 9112 3.2); an HTTP/2 request for an http(s) URI needs
            // `:authority` or `Host` (RFC 9113 8.3.1). Routing by an empty host would guess.
            return .reject(.malformedRequest, close: true)
        }
        // An absolute-form target's authority meets the grammar `HostFieldCheck` holds `Host` to.
        if fromTarget != nil, !HostHeader.isValid(request.authority) { return .reject(.malformedRequest, close: true) }
        return .pass
    }
}
