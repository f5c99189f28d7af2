extension RateLimitLayer: ExplainableLayer {
    /// The limits and the bucket the request would draw from; no token is taken, so explaining
    /// never spends a client's allowance.
    func explain(_ request: inout LayerRequest, context: ExplainContext) -> Explanation.Layer {
        let explained = limiters.map { limiter -> Explanation.Policy in
            let config = limiter.config
            let key: String
            switch config.key {
            case .clientIP: key = "client address \(request.connection.clientAddress)"
            case .header(let name):
                key = request.head.fields.firstValue(named: name).map { "header \(name) = \"\($0)\"" }
                    ?? "header \(name) (absent: every request without it shares one bucket)"
            }
            return Explanation.Policy(
                name: limiter.policyName, line: context.policyLines[limiter.policyName],
                config: ["requests": .int(config.requests), "per": .duration(config.per), "burst": .int(config.burst),
                         "key": .string(key)],
                result: "limit",
                reason: "over it 429 (explaining spends no token)",
                token: nil)
        }
        return Explanation.Layer(layer: "rate-limit", policies: explained,
                                 reason: "passes while its bucket has a token (each event loop holds its share of the limit)")
    }
}
