import Foundation
import PorticoAuth
import PorticoConfig
import PorticoHTTP1

extension JWTLayer: ExplainableLayer {
    /// Each policy's verdict on the request's token, with the same verifier and keys the
    /// request path uses; a policy that accepts it ends the walk, as in `requestHead`.
    func explain(_ request: inout LayerRequest, context: ExplainContext) -> Explanation.Layer {
        var explained: [Explanation.Policy] = []
        var accepted = false
        var tokenFailed = false
        var required = false
        for policy in policies {
            var entry = Explanation.Policy(name: policy.name, line: context.policyLines[policy.name],
                                           config: policy.explainedConfig, result: "", reason: nil, token: nil)
            guard !accepted else {
                entry.result = "skipped"
                entry.reason = "an earlier jwt policy accepted the token"
                explained.append(entry)
                continue
            }
            switch policy.inspect(headers: request.head.fields, uri: request.head.target) {
            case .noToken:
                entry.result = "missing"
                entry.token = Explanation.Token(state: "missing")
                entry.reason = "no token in \(policy.explainedLocation)" + (policy.config.optional ? " (the policy is optional: passes)" : "")
                if !policy.config.optional { required = true }
            case .rejected(let reason):
                entry.result = "invalid"
                tokenFailed = true
                var why = reason.rawValue
                // Only a failure that needed the keys can be the keys' fault.
                if reason == .unknownKey || reason == .badSignature || reason == .unsupportedAlgorithm {
                    if let problem = context.keyProblems[policy.config.keys] {
                        why += "; " + problem
                    } else if !policy.keys.isLoaded {
                        why += "; the key set \(policy.explainedKeys) is not loaded"
                    }
                }
                entry.reason = why
                entry.token = Explanation.Token(state: "invalid", reason: reason.rawValue)
            case .verified(let verified):
                entry.result = "valid"
                accepted = true
                entry.token = Explanation.Token(state: "valid", subject: verified.claims.string("sub"),
                                                issuer: verified.claims.string("iss"), claims: verified.claims.values)
                request.token = verified
                policy.applyVerified(verified, to: &request.head.fields, query: &request.query)
            }
            explained.append(entry)
        }
        if accepted || !(tokenFailed || required) {
            return Explanation.Layer(layer: "jwt", policies: explained, decision: "proceed",
                                     reason: accepted ? "token valid" : "no token, and every policy is optional")
        }
        return Explanation.Layer(layer: "jwt", policies: explained, decision: "reject", status: 401,
                                 reason: tokenFailed ? "the token is invalid" : "a token is required")
    }
}

extension JWTPolicy {
    /// `verify` without its side effects: no refresh of the keys is started, nothing counted.
    func inspect(headers: HTTPFieldList, uri: String) -> Outcome {
        guard let token = token(in: headers, uri: uri) else { return .noToken }
        let (table, _) = keys.table(now: 0, maxAge: .max)
        switch verifier.verify(token, keys: table, now: Double(time(nil))) {
        case .failure(let reason): return .rejected(reason)
        case .success(let verified): return .verified(verified)
        }
    }

    var explainedKeys: String {
        switch config.keys {
        case .file(let path): return "file \(path)"
        case .url(let url): return "URL \(url)"
        }
    }

    var explainedLocation: String {
        switch config.from {
        case .header(let name, let prefix): return prefix.isEmpty ? "header \(name)" : "header \(name) (\(prefix.trimmingCharacters(in: .whitespaces)))"
        case .query(let parameter): return "query parameter \(parameter)"
        }
    }

    var explainedConfig: [String: Explanation.Value] {
        var config: [String: Explanation.Value] = [
            "issuer": .string(self.config.issuer),
            "keys": .string(explainedKeys),
            "from": .string(explainedLocation),
        ]
        if !self.config.audiences.isEmpty { config["audiences"] = .list(self.config.audiences) }
        if self.config.optional { config["optional"] = .bool(true) }
        return config
    }
}
