import Logging
import NIOCore
import PorticoConfig
import PorticoRouting

/// A loaded config compiled for serving: the route table built, services indexed.
///
/// Immutable, so a reload swaps one reference per event loop and a request that already
/// started keeps the snapshot it began with.
public final class RuntimeSnapshot: Sendable {
    public let config: GatewayConfig
    /// The deployed functions, by name (the serving revision of each).
    public let functions: [String: any DeployedFunction]
    /// The gateway's routes, then the routes functions declare, in match order.
    public let routes: [RouteConfig]
    public let routeTable: RouteTable
    /// Bumped by every successful reload or function change; shown by the admin API.
    public let generation: Int
    let servicesByName: [String: ServiceConfig]
    let maxRequestHeaders: Int
    let maxRequestBody: Int
    /// Indexed by a route's position in match order; empty when no route has a policy, a fault,
    /// retries or header edits.
    let routePolicies: [RoutePolicies?]
    /// The layers each route's requests pass (see `RequestPath`).
    let requestPath: RequestPath
    /// The headers jwt policies write for the backend (the payload, claims): a client's copy,
    /// in any spelling, never passes.
    let trustedOutputHeaders: [String]
    /// The rate limiters by policy name, so the next snapshot can keep the buckets of a policy
    /// whose config did not change (a reload does not hand every client a fresh burst).
    let rateLimiters: [String: RateLimiter]
    /// The JWKS of each source the jwt policies name, kept by the next snapshot while the
    /// source stays the same.
    let keyStores: [JWTConfig.KeySource: JWTKeyStore]
    /// Outlier detection and health checks, for services that configure them; kept by the next
    /// snapshot while the service's config stays the same.
    let serviceHealth: [String: ServiceHealth]
    /// TLS to the endpoints, for services that configure it; kept while unchanged, so the
    /// pools (keyed by it) stay warm across reloads.
    let upstreamTLS: [String: UpstreamTLS]
    /// The `tcp:` listeners' routing, by listener name.
    let tcpRoutes: [String: TCPRoutes]
    /// `tracing:`: the sampler and the span exporter (kept from `previous` across reloads).
    let tracing: TracingRuntime?

    /// `previous` lends its rate limiters' state to the policies that are unchanged; `metrics`
    /// gives the policies their counters.
    ///
    /// `keyStores` are the loaded key sets of the jwt policies' sources (see `loadKeyStores`);
    /// a source missing from it, and from `previous`, gets a store that has no keys yet.
    /// `reloadChangedFiles` false keeps `previous`'s upstream TLS even if its files changed (a
    /// function deploy must not fail on a certificate half-written on disk; the watcher's
    /// reload picks the new files up).
    init(config: GatewayConfig, functions: [String: any DeployedFunction] = [:], generation: Int,
                previous: RuntimeSnapshot? = nil, metrics: GatewayMetrics? = nil,
                keyStores: [JWTConfig.KeySource: JWTKeyStore] = [:], reloadChangedFiles: Bool = true) throws {
        self.config = config
        self.functions = functions
        self.routes = config.routes + functions.values.map(\.manifest).routeConfigs(after: config.routes.count)
        self.routeTable = try RouteTable(routes)
        self.generation = generation
        self.servicesByName = Dictionary(config.services.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        self.maxRequestHeaders = config.limits.maxRequestHeaders
        self.maxRequestBody = config.limits.maxRequestBody
        self.tcpRoutes = TCPRoutes.compile(config)

        var tlsByService: [String: UpstreamTLS] = [:]
        var healthByService: [String: ServiceHealth] = [:]
        for service in config.services {
            var tls: UpstreamTLS?
            if let tlsConfig = service.tls {
                if let kept = previous?.upstreamTLS[service.name], kept.config == tlsConfig,
                   kept.upstreamProtocol == service.protocol,
                   !reloadChangedFiles || !kept.files.changedSinceLoaded {
                    tls = kept
                } else {
                    do {
                        tls = try UpstreamTLS(config: tlsConfig, protocol: service.protocol)
                    } catch {
                        throw ConfigError([ConfigDiagnostic(
                            location: service.location.value ?? SourceLocation(file: config.sourceFile, line: 1, column: 1),
                            key: "services.\(service.name).tls", message: "cannot load the TLS files: \(error)")])
                    }
                }
                tlsByService[service.name] = tls
            }
            guard service.outlierDetection != nil || service.healthCheck != nil else { continue }
            // Kept while what it watches stays the same: a reload that changes a service's
            // retries or breaker does not forget which endpoints are ejected or unhealthy.
            if let kept = previous?.serviceHealth[service.name], kept.watchesTheSame(as: service), kept.tls === tls {
                healthByService[service.name] = kept
            } else {
                healthByService[service.name] = ServiceHealth(service: service, tls: tls, metrics: metrics)
            }
        }
        self.upstreamTLS = tlsByService
        self.serviceHealth = healthByService

        var limiters: [String: RateLimiter] = [:]
        var stores: [JWTConfig.KeySource: JWTKeyStore] = [:]
        var compiledPolicies: [String: PolicySet] = [:]
        for policy in config.policies {
            var set = PolicySet()
            switch policy.kind {
            case .rateLimit(let limit):
                if let kept = previous?.rateLimiters[policy.name], kept.config == limit {
                    limiters[policy.name] = kept
                } else {
                    limiters[policy.name] = RateLimiter(policyName: policy.name, config: limit, metrics: metrics)
                }
                set.rateLimiters = [limiters[policy.name]!]
            case .jwt(let jwt):
                let store = stores[jwt.keys] ?? keyStores[jwt.keys] ?? previous?.keyStores[jwt.keys]
                    ?? JWTKeyStore(source: jwt.keys)
                stores[jwt.keys] = store
                set.authentication = [JWTPolicy(name: policy.name, config: jwt, keys: store, metrics: metrics)]
            case .authorization(let authorization):
                set.authorization = [AuthorizationPolicy(name: policy.name, config: authorization, metrics: metrics)]
            }
            compiledPolicies[policy.name] = set
        }
        self.rateLimiters = limiters
        self.keyStores = stores
        self.trustedOutputHeaders = config.policies.flatMap { policy -> [String] in
            guard case .jwt(let jwt) = policy.kind else { return [] }
            return (jwt.forwardHeader.map { [$0] } ?? []) + jwt.claimToHeaders.map(\.header)
        }
        func policySet(_ names: [String]) -> PolicySet {
            var set = PolicySet()
            for name in names {
                guard let compiled = compiledPolicies[name] else { continue }
                set.authentication += compiled.authentication
                set.authorization += compiled.authorization
                set.rateLimiters += compiled.rateLimiters
            }
            return set
        }
        var byListener: [String: PolicySet] = [:]
        for listener in config.listeners where !listener.policies.isEmpty {
            byListener[listener.name] = policySet(listener.policies)
        }
        let compiled: [RoutePolicies?] = routes.map { route in
            guard !route.policies.isEmpty || route.fault != nil || route.retries != nil || route.requestHeaders != nil
                || route.responseHeaders != nil || route.cors != nil else { return nil }
            return RoutePolicies(named: policySet(route.policies), fault: route.fault,
                                 retries: route.retries.map(CompiledRetries.init),
                                 requestHeaders: route.requestHeaders.map(RequestHeadersPolicy.init),
                                 responseHeaders: route.responseHeaders.map(ResponseHeadersPolicy.init),
                                 cors: route.cors.map(CORSPolicy.init))
        }
        self.routePolicies = compiled.contains { $0 != nil } ? compiled : []
        self.tracing = config.tracing.map {
            TracingRuntime(config: $0, previous: previous?.tracing, registry: metrics?.registry)
        }
        self.requestPath = RequestPath(routes: routes, routePolicies: compiled, listenerPolicies: byListener,
                                       limits: config.limits, trustedOutputHeaders: trustedOutputHeaders,
                                       tracing: config.tracing != nil)
    }
}

extension RuntimeSnapshot {
    /// Loads the key sets that `config`'s jwt policies need and `previous` does not already
    /// hold. Throws if one cannot be loaded: a config whose keys cannot be read is rejected,
    /// as a config with a typo is.
    static func loadKeyStores(for config: GatewayConfig, previous: RuntimeSnapshot?,
                              logger: Logger) async throws -> [JWTConfig.KeySource: JWTKeyStore] {
        var stores: [JWTConfig.KeySource: JWTKeyStore] = [:]
        for policy in config.policies {
            guard case .jwt(let jwt) = policy.kind, stores[jwt.keys] == nil else { continue }
            // A file is read again at every reload (someone may have just edited it, and a
            // broken one rejects the config); a URL's keys are kept while loaded.
            let kept = previous?.keyStores[jwt.keys]
            if let kept, kept.isLoaded, case .url = jwt.keys {
                stores[jwt.keys] = kept
                continue
            }
            let store = kept ?? JWTKeyStore(source: jwt.keys, logger: logger)
            do {
                try await store.load()
            } catch {
                throw ConfigError([ConfigDiagnostic(
                    location: policy.location, key: "policies.\(policy.name).jwt", message: "\(error)")])
            }
            stores[jwt.keys] = store
        }
        return stores
    }
}

extension ConfigDuration {
    var timeAmount: TimeAmount { .nanoseconds(nanoseconds) }
}
