import PorticoAuth

extension AuthorizationLayer: ExplainableLayer {
    /// Each policy's verdict with the rules the request path uses, on the principal and the
    /// token the layers before established; nothing is counted.
    func explain(_ request: inout LayerRequest, context: ExplainContext) -> Explanation.Layer {
        let attributes = AuthorizationRules.Request(
            principal: request.connection.principal, token: request.token, method: request.head.method,
            path: request.path, host: request.authority)
        var explained: [Explanation.Policy] = []
        var denied: String?
        for policy in policies {
            var entry = Explanation.Policy(name: policy.name, line: context.policyLines[policy.name],
                                           config: ["rules": .int(policy.rules.rules.count)], result: "allow", reason: nil, token: nil)
            if let rule = policy.rules.firstMatchingRule(attributes) {
                entry.reason = "rule \(rule + 1) of \(policy.rules.rules.count) allows it"
            } else {
                entry.result = "deny"
                entry.reason = "no rule allows \(request.head.method) \(request.path)"
                    + (request.token == nil ? " without a verified token" : " for \(request.token?.requestPrincipal ?? "this token")")
                if denied == nil { denied = policy.name }
            }
            explained.append(entry)
        }
        guard let denied else { return Explanation.Layer(layer: "authorization", policies: explained, reason: "every policy allows it") }
        return Explanation.Layer(layer: "authorization", policies: explained, decision: "reject", status: 403,
                                 reason: "policy \(denied) denies it")
    }
}
