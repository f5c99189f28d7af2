extension CORSPolicy: ExplainableLayer {
    /// Runs the policy itself: it only reads the request's `Origin` and writes answer fields,
    /// so it has nothing to spend or count.
    func explain(_ request: inout LayerRequest, context: ExplainContext) -> Explanation.Layer {
        var config: [String: Explanation.Value] = [
            "allowOrigins": .list(self.config.allowOrigins),
            "allowMethods": .list(self.config.allowMethods),
        ]
        if !self.config.allowHeaders.isEmpty { config["allowHeaders"] = .list(self.config.allowHeaders) }
        if self.config.allowCredentials { config["allowCredentials"] = .bool(true) }
        switch requestHead(&request) {
        case .reject(let status, _, _, _) where status.code == 200:
            return Explanation.Layer(layer: "cors", config: config, decision: "answer", status: 200,
                                     reason: "a CORS preflight from an allowed origin: answered here")
        case .reject(let status, _, _, _):
            return Explanation.Layer(layer: "cors", config: config, decision: "reject", status: Int(status.code),
                                     reason: "a CORS preflight from an origin or for a method that is not allowed")
        case .proceed, .delay:
            let origin = request.head.fields.firstValue(of: "origin")
            return Explanation.Layer(layer: "cors", config: config,
                                     reason: origin.map { "not a preflight; origin \($0)" } ?? "no Origin: nothing to do")
        }
    }
}
