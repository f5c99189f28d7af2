import PorticoConfig
import PorticoHTTP1

/// A route's `responseHeaders`: the Gateway API's ResponseHeaderModifier, edits to the
/// backend's answer on its way to the client (a service's, a function's, a `101` included).
///
/// It applies to what the backend answers, after Portico strips the hop-by-hop fields, and not
/// to answers Portico makes itself (a 404, a policy's 401/403/429, a 502/503/504, a direct
/// response or a redirect): a `cache-control: public` meant for the backend's pages must not
/// make a gateway's 503 cacheable. Envoy's route `response_headers_to_add` likewise skips the
/// local replies of the filters before its router.
final class ResponseHeadersPolicy: RequestLayer {
    let edits: HeaderEdits

    init(_ config: HeaderModifierConfig) {
        edits = HeaderEdits(config)
    }

    func apply(to headers: inout HTTPFieldList) {
        edits.apply(to: &headers)
    }

    func responseHead(_ head: inout ResponseHead) {
        edits.apply(to: &head.fields)
    }
}
