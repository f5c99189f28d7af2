import NIOCore
import PorticoConfig
import PorticoCore

/// Everything one event loop needs to serve requests, touched only from that loop: the config
/// snapshot it serves, its upstream pools and load-balancer state, its metric series and its
/// access-log batch. Nothing here takes a lock.
final class LoopContext {
    let eventLoop: EventLoop
    private(set) var snapshot: RuntimeSnapshot
    private var pools: [HostPort: UpstreamPool] = [:]
    private var pickers: [String: EndpointPicker] = [:]
    private let loopIndex: Int
    let metrics: MetricsCache
    let accessLog: AccessLogBatch?
    var random = FastRandom()

    init(eventLoop: EventLoop, loopIndex: Int, snapshot: RuntimeSnapshot, metrics: GatewayMetrics,
         accessLogWriter: AccessLogWriter?) {
        self.eventLoop = eventLoop
        self.loopIndex = loopIndex
        self.snapshot = snapshot
        self.metrics = MetricsCache(metrics: metrics)
        self.accessLog = accessLogWriter.map { AccessLogBatch(writer: $0, eventLoop: eventLoop) }
        self.random = FastRandom(seed: UInt64.random(in: .min ... .max))
    }

    /// Starts serving `newSnapshot`. Pools of endpoints still in use are kept warm; pools of
    /// endpoints no longer named are shut down once their leased connections come back.
    func install(_ newSnapshot: RuntimeSnapshot) {
        // Installs come from reloads and from function changes; the newest one wins.
        guard newSnapshot.generation > snapshot.generation else { return }
        let old = snapshot
        snapshot = newSnapshot
        let liveEndpoints = Set(newSnapshot.config.services.flatMap(\.endpoints))
        for (endpoint, pool) in pools where !liveEndpoints.contains(endpoint) && !workerPools.contains(endpoint) {
            pool.shutdown()
            pools[endpoint] = nil
        }
        for service in newSnapshot.config.services where old.servicesByName[service.name] != service {
            pickers[service.name] = nil
        }
    }

    /// Chooses an endpoint of `service` and returns its pool.
    func pool(for service: ServiceConfig) -> (pool: UpstreamPool, endpointIndex: Int) {
        if pickers[service.name]?.endpointCount != service.endpoints.count {
            pickers[service.name] = EndpointPicker(
                strategy: service.loadBalancer.strategy, endpointCount: service.endpoints.count, startingAt: loopIndex)
        }
        // Mutated in place through the dictionary: a copy out and back would copy the picker's
        // in-flight counts on every request.
        let index = pickers[service.name]!.pick(using: &random)
        pickers[service.name]!.requestStarted(at: index)
        let endpoint = service.endpoints[index]
        if let pool = pools[endpoint] { return (pool, index) }
        let pool = UpstreamPool(
            endpoint: endpoint, eventLoop: eventLoop, maxConnections: service.maxConnectionsPerEndpoint,
            connectTimeout: service.connectTimeout.timeAmount, idleTimeout: snapshot.config.limits.idleTimeout.timeAmount,
            metrics: metrics.metrics)
        pools[endpoint] = pool
        return (pool, index)
    }

    /// Retry budgets by backend (a service's name, or `function:NAME`), this loop's share:
    /// each loop keeps its own, so the budget is a share of requests without a shared lock.
    private var retryBudgets: [String: (config: RetryBudgetConfig, budget: RetryBudget)] = [:]

    func recordRequestForRetryBudget(_ backend: String, config: RetryBudgetConfig, now: Int64) {
        if retryBudgets[backend]?.config != config {
            // New, or its settings changed in a reload.
            retryBudgets[backend] = (config, RetryBudget(percent: config.percent, minimum: config.minRetries,
                                                         windowNanoseconds: config.interval.nanoseconds, now: now))
        }
        retryBudgets[backend]!.budget.recordRequest(now: now)
    }

    func takeRetryFromBudget(_ backend: String, now: Int64) -> Bool {
        retryBudgets[backend]?.budget.takeRetry(now: now) ?? false
    }

    /// Endpoints that are function workers (their pools go when the worker goes).
    private var workerPools: Set<HostPort> = []
    private var functionRequestCounter: UInt64 = 0

    /// The pool for a function worker's port.
    func pool(forWorker endpoint: HostPort) -> UpstreamPool {
        if let pool = pools[endpoint] { return pool }
        let pool = UpstreamPool(
            endpoint: endpoint, eventLoop: eventLoop, maxConnections: 1024, connectTimeout: .seconds(1),
            idleTimeout: snapshot.config.limits.idleTimeout.timeAmount, metrics: metrics.metrics)
        pools[endpoint] = pool
        workerPools.insert(endpoint)
        return pool
    }

    /// A worker stopped: its port may be reused by another one, so its pool must go.
    func dropPool(_ endpoint: HostPort) {
        workerPools.remove(endpoint)
        pools.removeValue(forKey: endpoint)?.shutdown()
    }

    /// A function request id unique in the process: a per-loop counter tagged with the loop.
    func nextFunctionRequestID() -> UInt64 {
        functionRequestCounter &+= 1
        return (functionRequestCounter << 8) | UInt64(loopIndex & 0xFF)
    }

    func requestFinished(service: String, endpointIndex: Int) {
        guard let count = pickers[service]?.endpointCount, endpointIndex < count else { return }
        pickers[service]!.requestFinished(at: endpointIndex)
    }

    /// Open and idle upstream connections of this loop, by endpoint (for the admin API).
    func poolStatistics() -> [HostPort: (open: Int, idle: Int)] {
        pools.mapValues { ($0.openConnections, $0.idleConnections) }
    }

    func shutdownPools() {
        for pool in pools.values { pool.shutdown() }
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
