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
}

/// A route's `retries`, ready for the request path.
struct CompiledRetries {
    let rules: RetryRules
    let perTryTimeout: TimeAmount?
    let replayBuffer: Int

    init(_ config: RetryConfig) {
        var conditions: RetryRules.Conditions = []
        for condition in config.retryOn {
            switch condition {
            case .serverError: conditions.insert(.serverError)
            case .gatewayError: conditions.insert(.gatewayError)
            case .connectFailure: conditions.insert(.connectFailure)
            case .reset: conditions.insert(.reset)
            case .retriable4xx: conditions.insert(.retriable4xx)
            case .refusedStream: conditions.insert(.refusedStream)
            }
        }
        rules = RetryRules(retries: config.attempts, conditions: conditions)
        perTryTimeout = config.perTryTimeout.map { .nanoseconds($0.nanoseconds) }
        replayBuffer = config.replayBuffer
    }
}

extension RuntimeSnapshot {
    /// The compiled policies of the route at `index` in match order, if it has any.
    func policies(ofRoute index: Int) -> RoutePolicies? {
        index < routePolicies.count ? routePolicies[index] : nil
    }
}
