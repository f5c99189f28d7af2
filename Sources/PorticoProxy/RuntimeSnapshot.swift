import NIOCore
import PorticoConfig
import PorticoFunctions
import PorticoRouting

/// A loaded config compiled for serving: the route table built, services indexed.
///
/// Immutable, so a reload swaps one reference per event loop and a request that already
/// started keeps the snapshot it began with.
public final class RuntimeSnapshot: Sendable {
    public let config: GatewayConfig
    /// The deployed functions, by name (the serving revision of each).
    public let functions: [String: FunctionBackend]
    /// The gateway's routes, then the routes functions declare, in match order.
    public let routes: [RouteConfig]
    public let routeTable: RouteTable
    /// Bumped by every successful reload or function change; shown by the admin API.
    public let generation: Int
    let servicesByName: [String: ServiceConfig]
    let maxRequestHeaders: Int
    let maxRequestBody: Int
    /// Indexed by a route's position in match order; empty when no route has a policy or a fault.
    let routePolicies: [RoutePolicies?]
    let listenerRateLimiters: [String: [RateLimiter]]
    /// The rate limiters by policy name, so the next snapshot can keep the buckets of a policy
    /// whose config did not change (a reload does not hand every client a fresh burst).
    let rateLimiters: [String: RateLimiter]

    /// `previous` lends its rate limiters' state to the policies that are unchanged; `metrics`
    /// gives the policies their counters.
    public init(config: GatewayConfig, functions: [String: FunctionBackend] = [:], generation: Int,
                previous: RuntimeSnapshot? = nil, metrics: GatewayMetrics? = nil) throws {
        self.config = config
        self.functions = functions
        self.routes = config.routes + functions.values.map(\.manifest).routeConfigs(after: config.routes.count)
        self.routeTable = try RouteTable(routes)
        self.generation = generation
        self.servicesByName = Dictionary(config.services.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        self.maxRequestHeaders = config.limits.maxRequestHeaders
        self.maxRequestBody = config.limits.maxRequestBody

        var limiters: [String: RateLimiter] = [:]
        for policy in config.policies {
            switch policy.kind {
            case .rateLimit(let limit):
                if let kept = previous?.rateLimiters[policy.name], kept.config == limit {
                    limiters[policy.name] = kept
                } else {
                    limiters[policy.name] = RateLimiter(policyName: policy.name, config: limit, metrics: metrics)
                }
            }
        }
        self.rateLimiters = limiters
        var byListener: [String: [RateLimiter]] = [:]
        for listener in config.listeners where !listener.policies.isEmpty {
            byListener[listener.name] = listener.policies.compactMap { limiters[$0] }
        }
        self.listenerRateLimiters = byListener
        let compiled: [RoutePolicies?] = routes.map { route in
            guard !route.policies.isEmpty || route.fault != nil || route.retries != nil else { return nil }
            return RoutePolicies(rateLimiters: route.policies.compactMap { limiters[$0] }, fault: route.fault,
                                 retries: route.retries.map(CompiledRetries.init))
        }
        self.routePolicies = compiled.contains { $0 != nil } ? compiled : []
    }
}

extension ConfigDuration {
    var timeAmount: TimeAmount { .nanoseconds(nanoseconds) }
}
