import NIOCore
import PorticoConfig
import PorticoCore

/// Everything one event loop needs to serve requests, touched only from that loop: the config
/// snapshot it serves, its upstream pools and load-balancer state, its metric series and its
/// access-log batch. Nothing here takes a lock.
final class LoopContext {
    let eventLoop: EventLoop
    private(set) var snapshot: RuntimeSnapshot
    /// Pools by endpoint and, for a TLS service, by its TLS settings (the same address reached
    /// in plaintext and over TLS is two pools).
    private var pools: [PoolKey: any UpstreamSource] = [:]
    /// Circuit breakers by service, this loop's share (see `CircuitBreakerConfig`).
    private var breakers: [String: (config: CircuitBreakerConfig, breaker: CircuitBreaker)] = [:]
    private var pickers: [String: EndpointPicker] = [:]
    /// The services as backends of this loop, by name; made again when a reload changes one.
    private var serviceBackends: [String: ServiceBackend] = [:]
    private let loopIndex: Int
    let metrics: MetricsCache
    let accessLog: AccessLogBatch?
    /// The taps this loop writes lines for; empty (and so free) while no one taps.
    let tap: LoopTap
    /// Request timeouts of this loop's exchanges.
    let timeouts: DeadlineSweeper<Exchange>
    var random = FastRandom()
    /// The `tcp:` listeners' load balancing on this loop.
    lazy var tcp = TCPLoopState(loopIndex: loopIndex)
    /// This loop's finished spans, on their way to the exporter (with `tracing:` only).
    lazy var traces = TraceBatch(eventLoop: eventLoop)

    init(eventLoop: EventLoop, loopIndex: Int, snapshot: RuntimeSnapshot, metrics: GatewayMetrics,
         accessLogWriter: AccessLogWriter?) {
        self.eventLoop = eventLoop
        self.loopIndex = loopIndex
        self.snapshot = snapshot
        self.metrics = MetricsCache(metrics: metrics)
        self.accessLog = accessLogWriter.map { AccessLogBatch(writer: $0, eventLoop: eventLoop) }
        self.timeouts = DeadlineSweeper(loop: eventLoop)
        self.tap = LoopTap(eventLoop: eventLoop)
        self.random = FastRandom(seed: UInt64.random(in: .min ... .max))
    }

    /// Starts serving `newSnapshot`. Pools of endpoints still in use are kept warm; pools of
    /// endpoints no longer named are shut down once their leased connections come back.
    func install(_ newSnapshot: RuntimeSnapshot) {
        // Installs come from reloads and from function changes; the newest one wins.
        guard newSnapshot.generation > snapshot.generation else { return }
        let old = snapshot
        snapshot = newSnapshot
        let liveKeys = Set(newSnapshot.config.services.flatMap { service in
            service.endpoints.map { PoolKey(endpoint: $0, service: service, tls: newSnapshot.upstreamTLS[service.name]) }
        })
        for (key, pool) in pools where !liveKeys.contains(key) && !leasedPools.contains(key.endpoint) {
            pool.shutdown()
            pools[key] = nil
        }
        for service in newSnapshot.config.services where old.servicesByName[service.name] != service {
            pickers[service.name] = nil
            breakers[service.name] = nil
        }
        for (name, backend) in serviceBackends where newSnapshot.servicesByName[name] != backend.service {
            serviceBackends[name] = nil
        }
    }

    /// `service` as a backend of this loop; `service` comes from this loop's snapshot.
    func serviceBackend(for service: ServiceConfig) -> ServiceBackend {
        if let backend = serviceBackends[service.name] { return backend }
        let backend = ServiceBackend(service: service, loop: self)
        serviceBackends[service.name] = backend
        return backend
    }

    /// Chooses an endpoint of `service` and returns its pool: one that outlier detection has
    /// not ejected and health checks have not failed, and not `avoiding` (a retry's previous
    /// endpoint) where another will do.
    /// Also returns the service's outlier detection and health checks, when it has them, for
    /// the request to report its outcome to.
    func pool(for service: ServiceConfig, avoiding: Int? = nil)
        -> (pool: any UpstreamSource, endpointIndex: Int, health: ServiceHealth?) {
        if pickers[service.name]?.endpointCount != service.endpoints.count {
            pickers[service.name] = EndpointPicker(
                strategy: service.loadBalancer.strategy, endpointCount: service.endpoints.count, startingAt: loopIndex)
        }
        let health = snapshot.serviceHealth.isEmpty ? nil : snapshot.serviceHealth[service.name]
        let availability = health?.availability
        // Mutated in place through the dictionary: a copy out and back would copy the picker's
        // in-flight counts on every request.
        var index = pickers[service.name]!.pick(using: &random)
        if availability != nil || avoiding != nil {
            // A few more picks past the endpoints that should not get this request, so the
            // strategy still decides among the rest; then, for an unavailable one, the next
            // available in order. Availability wins over avoiding a retry's previous endpoint.
            let count = service.endpoints.count
            func unavailable(_ index: Int) -> Bool { availability.map { !$0[index] } ?? false }
            var tries = 1
            while tries < 2 * count, unavailable(index) || (index == avoiding && count > 1) {
                index = pickers[service.name]!.pick(using: &random)
                tries += 1
            }
            if unavailable(index), let next = (1..<count).lazy.map({ (index + $0) % count }).first(where: { !unavailable($0) }) {
                index = next
            }
        }
        pickers[service.name]!.requestStarted(at: index)
        let endpoint = service.endpoints[index]
        let tls = snapshot.upstreamTLS.isEmpty ? nil : snapshot.upstreamTLS[service.name]
        let key = PoolKey(endpoint: endpoint, service: service, tls: tls)
        if let pool = pools[key] { return (pool, index, health) }
        let pool = makePool(for: key, tls: tls)
        pools[key] = pool
        return (pool, index, health)
    }

    /// A pool for `key`'s endpoint in its protocol.
    private func makePool(for key: PoolKey, tls: UpstreamTLS?) -> any UpstreamSource {
        let idleTimeout = snapshot.config.limits.idleTimeout.timeAmount
        let connectMetrics = metrics.connectMetrics(owner: key.owner)
        switch key.protocol {
        case .http1:
            return UpstreamPool(
                endpoint: key.endpoint, eventLoop: eventLoop, maxConnections: key.maxConnections,
                connectTimeout: .nanoseconds(key.connectTimeout), idleTimeout: idleTimeout, metrics: metrics.metrics,
                connectMetrics: connectMetrics, tls: tls)
        case .h2c, .h2:
            return HTTP2UpstreamPool(
                endpoint: key.endpoint, eventLoop: eventLoop, maxConnections: key.maxConnections,
                connectTimeout: .nanoseconds(key.connectTimeout), idleTimeout: idleTimeout, metrics: metrics.metrics,
                connectMetrics: connectMetrics, tls: key.protocol == .h2 ? tls : nil)
        case .auto:
            return NegotiatingUpstreamPool(
                endpoint: key.endpoint, eventLoop: eventLoop, maxConnections: key.maxConnections,
                connectTimeout: .nanoseconds(key.connectTimeout), idleTimeout: idleTimeout, metrics: metrics.metrics,
                connectMetrics: connectMetrics, tls: tls!)  // `auto` requires `tls` (checked with the config)
        }
    }

    /// A request of `service` must wait for a connection: false when `maxPendingRequests`
    /// already wait on this loop (answer 503 at once).
    func queueRequest(service name: String, breaker config: CircuitBreakerConfig) -> Bool {
        guard config.maxPendingRequests != nil else { return true }
        if breakers[name]?.config != config {
            breakers[name] = (config, CircuitBreaker(settings: .init(
                maxPendingRequests: config.maxPendingRequests, maxRequestsPerConnection: config.maxRequestsPerConnection)))
        }
        return breakers[name]!.breaker.requestQueued()
    }

    func dequeueRequest(service name: String) {
        breakers[name]?.breaker.requestDequeued()
    }

    /// Retry budgets by backend (a service's name, or `function:NAME`), this loop's share:
    /// each loop keeps its own, so the budget is a share of requests without a shared lock.
    private var retryBudgets: [String: (config: RetryBudgetConfig, budget: RetryBudget)] = [:]

    func recordRequestForRetryBudget(_ backend: String, config: RetryBudgetConfig, now: Int64) {
        if retryBudgets[backend]?.config != config {
            // New, or its settings changed in a reload.
            retryBudgets[backend] = (config, RetryBudget(
                percent: config.percent, minimumPerSecond: config.minRetriesPerSecond, minimum: config.minRetries,
                windowNanoseconds: config.interval.nanoseconds, now: now))
        }
        retryBudgets[backend]!.budget.recordRequest(now: now)
    }

    func takeRetryFromBudget(_ backend: String, now: Int64) -> Bool {
        retryBudgets[backend]?.budget.takeRetry(now: now) ?? false
    }

    /// Endpoints leased without a pool of their backend's choosing, such as function workers
    /// (their pools go when the backend says the endpoint is gone).
    private var leasedPools: Set<HostPort> = []
    private var leaseCounter: UInt64 = 0

    /// The pool for an endpoint a backend leased without one (a function worker's port), in
    /// the protocol the worker speaks.
    /// `owner` (`function:NAME`) labels its connect metrics.
    func pool(forLeased endpoint: HostPort, protocol upstreamProtocol: UpstreamProtocol = .http1,
              owner: String = "-") -> any UpstreamSource {
        let key = PoolKey(worker: endpoint, protocol: upstreamProtocol, owner: owner)
        if let pool = pools[key] { return pool }
        let pool = makePool(for: key, tls: nil)
        pools[key] = pool
        leasedPools.insert(endpoint)
        return pool
    }

    /// A leased endpoint is gone for good (a worker stopped): its port may be reused by
    /// another one, so its pools must go.
    func dropPool(_ endpoint: HostPort) {
        leasedPools.remove(endpoint)
        // Whichever protocol and function it served (a port can serve one function, then another).
        for key in pools.keys.filter({ $0.endpoint == endpoint && $0.isWorker }) {
            pools.removeValue(forKey: key)?.shutdown()
        }
    }

    /// A backend lease id unique in the process: a per-loop counter tagged with the loop.
    func nextLeaseID() -> UInt64 {
        leaseCounter &+= 1
        return (leaseCounter << 8) | UInt64(loopIndex & 0xFF)
    }

    func requestFinished(service: String, endpointIndex: Int) {
        guard let count = pickers[service]?.endpointCount, endpointIndex < count else { return }
        pickers[service]!.requestFinished(at: endpointIndex)
    }

    /// Open and idle upstream connections of this loop, by endpoint (for the admin API).
    func poolStatistics() -> [HostPort: (open: Int, idle: Int)] {
        var statistics: [HostPort: (open: Int, idle: Int)] = [:]
        for (key, pool) in pools {
            let sum = statistics[key.endpoint] ?? (0, 0)
            statistics[key.endpoint] = (sum.open + pool.openConnections, sum.idle + pool.idleConnections)
        }
        return statistics
    }

    func shutdownPools() {
        for pool in pools.values { pool.shutdown() }
    }
}

/// An upstream pool's identity: where, how (plaintext, or which TLS settings) and with which
/// limits. A reload that changes a service's connection settings gets new pools for it (the
/// old ones close once their connections come back); two services that share an endpoint
/// with different settings each get their own.
struct PoolKey: Hashable {
    let endpoint: HostPort
    let tls: ObjectIdentifier?
    let `protocol`: UpstreamProtocol
    let maxConnections: Int
    let connectTimeout: Int64
    /// The service (or `function:NAME`) the pool serves: its connect metrics' label. Two
    /// services that share an endpoint get a pool each, as Envoy's clusters do.
    let owner: String
    let isWorker: Bool

    init(endpoint: HostPort, service: ServiceConfig, tls: UpstreamTLS?) {
        self.endpoint = endpoint
        self.owner = service.name
        self.isWorker = false
        self.tls = tls.map(ObjectIdentifier.init)
        self.protocol = service.protocol
        self.maxConnections = min(service.maxConnectionsPerEndpoint, service.circuitBreaker?.maxConnections ?? .max)
        self.connectTimeout = service.connectTimeout.nanoseconds
    }

    /// A function worker's pool.
    init(worker endpoint: HostPort, protocol upstreamProtocol: UpstreamProtocol, owner: String) {
        self.endpoint = endpoint
        self.owner = owner
        self.isWorker = true
        self.tls = nil
        self.protocol = upstreamProtocol
        self.maxConnections = 1024
        self.connectTimeout = 1_000_000_000
    }
}

extension LoadBalancerKind {
    var strategy: EndpointPicker.Strategy {
        switch self {
        case .roundRobin: return .roundRobin
        case .leastRequest: return .leastRequest
        case .random: return .random
        }
    }
}

/// xorshift64*: the load balancer and request ids need speed, not unpredictability.
struct FastRandom: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64 = 0x9E37_79B9_7F4A_7C15) {
        state = seed == 0 ? 0x9E37_79B9_7F4A_7C15 : seed
    }

    mutating func next() -> UInt64 {
        state ^= state >> 12
        state ^= state << 25
        state ^= state >> 27
        return state &* 0x2545_F491_4F6C_DD1D
    }
}
