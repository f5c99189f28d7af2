import PorticoConfig

extension RetryLayer: ExplainableLayer {
    func explain(_ request: inout LayerRequest, context: ExplainContext) -> Explanation.Layer {
        request.retries = retries
        // The compiled rules keep no names; the route's config has them.
        guard let retryConfig = context.route.retries else {
            return Explanation.Layer(layer: "retries", config: ["attempts": .int(retries.rules.retries)])
        }
        var config: [String: Explanation.Value] = [
            "attempts": .int(retryConfig.attempts),
            "retryOn": .list(retryConfig.retryOn.map(\.rawValue)),
            "replayBuffer": .int(retryConfig.replayBuffer),
        ]
        if let perTry = retryConfig.perTryTimeout { config["perTryTimeout"] = .duration(perTry) }
        return Explanation.Layer(layer: "retries", config: config,
                                 reason: "retried on those conditions while the backend's retry budget allows")
    }
}
