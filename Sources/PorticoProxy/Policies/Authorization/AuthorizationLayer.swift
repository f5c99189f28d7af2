import PorticoAuth

/// `authorization`: may they. Every policy of the listener and the route must allow the
/// request (403 otherwise); the rules see the mTLS principal and the claims a `jwt` layer
/// before this one verified.
final class AuthorizationLayer: RequestLayer {
    /// The listener's policies, then the route's that the listener does not name.
    let policies: [AuthorizationPolicy]

    init(policies: [AuthorizationPolicy]) {
        self.policies = policies
    }

    func requestHead(_ request: inout LayerRequest) -> LayerVerdict {
        let attributes = AuthorizationRules.Request(
            principal: request.connection.principal, token: request.token, method: request.head.method,
            path: request.path, host: request.authority)
        for policy in policies where !policy.allows(attributes) {
            return .reject(status: .forbidden, headers: [], backend: "authz", reason: .authzDenied)
        }
        return .proceed
    }
}
