import PorticoConfig
import PorticoHTTP1

/// A route's `requestHeaders`: the Gateway API's RequestHeaderModifier, edits to the request
/// the backend receives (a service, an `http` function, or an `exec` function's environment).
///
/// It runs last on the upstream head, after Portico's own headers (`Host`, the framing, the
/// `X-Forwarded-*` and `Forwarded` fields, `X-Request-Id`) and after the jwt policy's, as
/// Envoy applies `request_headers_to_add` after its `x-forwarded-*`: a route can replace or
/// remove what Portico added. The config refuses the names that would break the proxy
/// (framing, hop-by-hop, `Host`, `Expect`, pseudo-headers).
final class RequestHeadersPolicy: RequestLayer {
    let edits: HeaderEdits

    init(_ config: HeaderModifierConfig) {
        edits = HeaderEdits(config)
    }

    func apply(to headers: inout HTTPFieldList) {
        edits.apply(to: &headers)
    }

    func upstreamHead(_ head: inout RequestHead, of request: LayerRequest) {
        edits.apply(to: &head.fields)
    }
}
