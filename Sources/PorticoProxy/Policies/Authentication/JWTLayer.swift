import PorticoAuth
import PorticoHTTP1

/// `jwt`: who is asking. The jwt policies of the listener and the route, as Istio treats
/// several RequestAuthentications: a token any one of them verifies is accepted (issuers
/// differ, so in practice the token's issuer picks its policy). A token none accepts: 401. No
/// token: 401 unless every policy is `optional`. Failures are counted only when the request
/// fails. The answer says `WWW-Authenticate: Bearer` and nothing of why (that goes to metrics).
final class JWTLayer: RequestLayer {
    /// The listener's policies, then the route's that the listener does not name.
    let policies: [JWTPolicy]

    init(policies: [JWTPolicy]) {
        self.policies = policies
    }

    func requestHead(_ request: inout LayerRequest) -> LayerVerdict {
        // Only values a policy verified reach the backend, whatever the client sent.
        for policy in policies { policy.removeOutputHeaders(from: &request.head.fields) }
        var accepted: (JWTPolicy, VerifiedToken)?
        var failures: [(JWTPolicy, JWTVerifier.Rejection?)] = []
        var required = false
        for policy in policies where accepted == nil {
            switch policy.verify(headers: request.head.fields, uri: request.head.target) {
            case .verified(let verified): accepted = (policy, verified)
            case .rejected(let reason): failures.append((policy, reason))
            case .noToken: if !policy.config.optional { required = true; failures.append((policy, nil)) }
            }
        }
        if let (policy, verified) = accepted {
            policy.applyVerified(verified, to: &request.head.fields, query: &request.query)
            request.token = verified
            return .proceed
        }
        // A token that was there and failed fails the request even where policies are optional.
        let tokenFailed = failures.contains { $0.1 != nil }
        guard tokenFailed || required else { return .proceed }
        for (policy, reason) in failures { policy.countFailure(reason) }
        return .reject(status: .unauthorized, headers: [("www-authenticate", "Bearer")], backend: "authn",
                       reason: tokenFailed ? .jwtInvalid : .jwtMissing)
    }
}
