import NIOCore
import PorticoAuth
import PorticoConfig
import PorticoCore
import PorticoHTTP1

/// The request policies a listener or a route names, compiled with its config snapshot and
/// sorted by kind, in the order the policy names them.
struct PolicySet {
    var authentication: [JWTPolicy] = []
    var authorization: [AuthorizationPolicy] = []
    var rateLimiters: [RateLimiter] = []

    var isEmpty: Bool { authentication.isEmpty && authorization.isEmpty && rateLimiters.isEmpty }
}

/// The policies of one route, compiled with its config snapshot.
struct RoutePolicies {
    /// The route's own `policies:`.
    let named: PolicySet
    let fault: FaultConfig?
    let retries: CompiledRetries?
    let requestHeaders: RequestHeadersPolicy?
    let responseHeaders: ResponseHeadersPolicy?
    let cors: CORSPolicy?
}
