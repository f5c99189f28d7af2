import PorticoHTTP1

/// Field names with `_`, as the listener's `underscoreHeaders` says (Envoy's
/// `headers_with_underscores_action`).
final class UnderscoreNameCheck: EdgeCheck {
    /// The fields Portico writes and backends trust, which no `_` spelling may stand in for
    /// even where underscores are allowed.
    let ownedNames: [String]

    init(trustedOutputHeaders: [String]) {
        ownedNames = ["x-forwarded-client-cert", "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host"]
            + trustedOutputHeaders
    }

    func check(_ request: inout EdgeRequest) -> EdgeVerdict {
        guard request.head.fields.hasUnderscoreName else { return .pass }
        let connection = request.connection
        guard connection.underscoreHeaders != .allow else {
            request.head.fields.removeUnderscoreSpellings(of: ownedNames)
            return .pass
        }
        // `Content_Length` may become `Content-Length` at a backend that maps `_` to `-`:
        // with a body, whatever the action, the request is refused (as nginx and HAProxy
        // refuse it); without one, the names are dropped unless the listener says reject.
        // HTTP/2 frames its body itself (`RequestHead(http2Fields:)` adds the framing headers),
        // so there only the names go.
        let hasBody = connection.isHTTP1
            && (request.contentLength != nil || request.head.fields.contains("transfer-encoding"))
        if connection.underscoreHeaders == .reject || hasBody { return .reject(.malformedRequest, close: true) }
        request.head.fields.removeUnderscoreNames()
        return .pass
    }
}
