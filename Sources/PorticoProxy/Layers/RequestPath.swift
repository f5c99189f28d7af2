import PorticoConfig

/// The request path, assembled here and nowhere else.
///
/// What a request meets, top to bottom (README, "How a request flows"):
/// 1. The codec (`HTTP1RequestReader` or `HTTP2ServerConnection`) parses and validates it.
/// 2. The edge checks (`Edge/`, listed below): limits (431, 413), framing, `Host`, path
///    normalization. They come before routing, which needs a normalized path and one host.
/// 3. The route table picks a route (404 when none matches).
/// 4. The route's layers, built below, in this order.
/// 5. The exchange (`ExchangeStateMachine`, driven by `ProxyHandler`): the backend's lease,
///    the retries and timeouts the layers set, the mirror, and relaying the answer, which
///    passes the layers' `responseHead`.
/// 6. The ending layers, for every request however it ended, matched or not.
///
/// Adding a policy: a folder under `Policies/` with its config, its layer and its tests, and one
/// line below.
struct RequestPath: Sendable {
    /// What every request meets before routing, in order.
    let edge: [any EdgeCheck]
    /// The layers of the request that matched route `index`, on a listener that names no policy.
    let routeLayers: [[any RequestLayer]]
    /// The same for each listener that names policies.
    let routeLayersByListener: [String: [[any RequestLayer]]]
    /// The layers that hear of every request's end.
    let ending: [any RequestLayer]

    init(routes: [RouteConfig], routePolicies: [RoutePolicies?], listenerPolicies: [String: PolicySet],
         limits: LimitsConfig, trustedOutputHeaders: [String], tracing: Bool = false) {
        edge = [
            // The cheapest refusal first, and before anything reads a field by name.
            HeaderSizeCheck(maxRequestHeaders: limits.maxRequestHeaders),
            HostFieldCheck(),
            // The framing before anything that reads the body's length (the underscore rule, the
            // body limit).
            FramingCheck(),
            UnderscoreNameCheck(trustedOutputHeaders: trustedOutputHeaders),
            BodySizeCheck(maxRequestBody: limits.maxRequestBody),
            PathCheck(),
            // After the path: an absolute-form target carries the authority.
            AuthorityCheck(),
        ]
        let forwarding = ForwardingHeadersLayer()
        let timeouts = routes.map { RouteTimeoutLayer(timeout: $0.timeout.timeAmount) }
        let mirrors = routes.map { config in config.mirror.map(MirrorLayer.init) }
        func route(_ index: Int, listener: PolicySet) -> [any RequestLayer] {
            let route = index < routePolicies.count ? routePolicies[index] : nil
            let named = route?.named ?? PolicySet()
            var layers: [any RequestLayer] = []
            // A CORS preflight is answered before anything asks who is calling: browsers send
            // no credentials on one.
            if let cors = route?.cors { layers.append(cors) }
            // Then: the client certificate header is Portico's own before any policy reads it,
            // and its upstream edits come before the route's own, which may override them (as
            // Envoy's `request_headers_to_add` comes after its `x-forwarded-*`).
            layers.append(forwarding)
            // Who is asking. A policy the listener and the route both name runs once, with the
            // listener's.
            let jwt = listener.authentication + named.authentication.filter { policy in
                !listener.authentication.contains { $0 === policy }
            }
            if !jwt.isEmpty { layers.append(JWTLayer(policies: jwt)) }
            // May they: after identity, as in Envoy's and Istio's chains, so rules can use it.
            let authorization = listener.authorization + named.authorization.filter { policy in
                !listener.authorization.contains { $0 === policy }
            }
            if !authorization.isEmpty { layers.append(AuthorizationLayer(policies: authorization)) }
            // After identity: a request refused as unknown does not spend a token of a client
            // that is known.
            let limiters = listener.rateLimiters + named.rateLimiters.filter { limiter in
                !listener.rateLimiters.contains { $0 === limiter }
            }
            if !limiters.isEmpty { layers.append(RateLimitLayer(limiters: limiters)) }
            // Last of those that decide, just before the backend (as Envoy's fault filter sits
            // before the router): a fault only hits requests that would have been served.
            if let fault = route?.fault { layers.append(FaultLayer(fault: fault)) }
            // What the exchange does with a request that will be served: how long it may wait,
            // how it retries, and who gets a copy. After the layers that decide, so a refused
            // request is not mirrored (Envoy's router, last in its chain, does all three).
            layers.append(timeouts[index])
            if let retries = route?.retries { layers.append(RetryLayer(retries: retries)) }
            if let mirror = mirrors[index] { layers.append(mirror) }
            // The route's header edits: last on the head the backend gets, first on its answer.
            if let requestHeaders = route?.requestHeaders { layers.append(requestHeaders) }
            if let responseHeaders = route?.responseHeaders { layers.append(responseHeaders) }
            return layers
        }
        routeLayers = routes.indices.map { route($0, listener: PolicySet()) }
        routeLayersByListener = listenerPolicies.mapValues { listener in routes.indices.map { route($0, listener: listener) } }
        // Metrics before the log line: both read the same ending, in either order. Spans last:
        // only they may take time (encoding), and only for requests that are recorded.
        ending = [MetricsLayer(), AccessLogLayer()] + (tracing ? [TracingLayer()] : [])
    }

    /// The layers of a request on `listener` that matched route `index`.
    func layers(listener: String, route index: Int) -> [any RequestLayer] {
        if !routeLayersByListener.isEmpty, let byRoute = routeLayersByListener[listener] { return byRoute[index] }
        return routeLayers[index]
    }
}
