import PorticoConfig
import PorticoHTTP1

/// A route's `cors`: browsers' cross-origin requests, as Envoy's CORS filter serves them.
///
/// - A preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`) is answered here,
///   ahead of every other layer: a browser sends no credentials on a preflight, so a `jwt`
///   policy would refuse it. An origin or a method that is not allowed gets 403 and no CORS
///   headers, which the browser reads as a refusal.
/// - Any other request from an allowed origin goes on, and its answer (the backend's, or the
///   gateway's own: a 401 the page should be able to read) is marked for that origin.
final class CORSPolicy: RequestLayer {
    let config: CORSConfig
    private let allowsAnyOrigin: Bool
    private let methods: String
    private let headers: String?
    private let exposed: String?
    private let maxAge: String?

    init(_ config: CORSConfig) {
        self.config = config
        allowsAnyOrigin = config.allowOrigins.contains("*")
        methods = config.allowMethods.joined(separator: ", ")
        headers = config.allowHeaders.isEmpty ? nil : config.allowHeaders.joined(separator: ", ")
        exposed = config.exposeHeaders.isEmpty ? nil : config.exposeHeaders.joined(separator: ", ")
        maxAge = config.maxAge.map { String($0.nanoseconds / 1_000_000_000) }
    }

    func requestHead(_ request: inout LayerRequest) -> LayerVerdict {
        // Most requests carry no `Origin`: one lookup, and nothing else.
        guard let origin = request.head.fields.firstValue(of: "origin") else { return .proceed }
        let allowed = allowsAnyOrigin || config.allowOrigins.contains(origin)
        let requestedMethod = request.head.method == "OPTIONS"
            ? request.head.fields.firstValue(of: "access-control-request-method") : nil
        if let requestedMethod {
            guard allowed, config.allowMethods.contains(requestedMethod) else {
                return .reject(status: .forbidden, headers: [], backend: "cors", reason: .corsDenied)
            }
            var answer = originFields(origin)
            answer.append(("access-control-allow-methods", methods))
            if let headers { answer.append(("access-control-allow-headers", headers)) }
            if let maxAge { answer.append(("access-control-max-age", maxAge)) }
            return .reject(status: .ok, headers: answer, backend: "cors", reason: .corsPreflight)
        }
        guard allowed else { return .proceed }
        request.responseFields += originFields(origin)
        if let exposed { request.responseFields.append(("access-control-expose-headers", exposed)) }
        return .proceed
    }

    private func originFields(_ origin: String) -> [(String, String)] {
        // `*` cannot go with credentials (the config refuses the pair), and a named origin makes
        // the answer vary by origin, which caches must know.
        if allowsAnyOrigin && !config.allowCredentials { return [("access-control-allow-origin", "*")] }
        var fields = [("access-control-allow-origin", origin), ("vary", "origin")]
        if config.allowCredentials { fields.append(("access-control-allow-credentials", "true")) }
        return fields
    }
}
