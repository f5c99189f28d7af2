import NIOConcurrencyHelpers
import NIOCore
import PorticoConfig
import PorticoCore
import Prometheus
import PorticoHTTP1

/// One `rateLimit` policy: a token bucket per key, shared by every event loop.
///
/// The limit is the gateway's, not each loop's (as Envoy's local rate limit shares its bucket
/// across workers), so the buckets sit behind one lock; it is held for a dictionary look-up and
/// a few integer operations, and only requests on routes that use the policy take it.
final class RateLimiter: Sendable {
    let policyName: String
    let config: RateLimitConfig
    private let limitedCounter: Counter?

    /// Above this many keys, buckets that have refilled completely are forgotten (a client
    /// that comes back finds a full bucket either way), at most once a second so that a flood
    /// of new keys does not pay a sweep per request.
    private static let pruneThreshold = 10_000
    /// A hard cap on memory: past it even after pruning, every bucket is forgotten. Only a key
    /// the client chooses (a header) can get there, and such keys are not a limit on a client
    /// that makes up new values anyway.
    private static let hardCap = 100_000
    private static let pruneInterval: Int64 = 1_000_000_000

    private struct State {
        var buckets: [String: TokenBucket] = [:]
        var lastPrune: Int64?
    }

    private let state = NIOLockedValueBox(State())

    init(policyName: String, config: RateLimitConfig, metrics: GatewayMetrics?) {
        self.policyName = policyName
        self.config = config
        self.limitedCounter = metrics?.rateLimitedCounter(policy: policyName)
    }

    /// Takes a token for `key` at `now` (nanoseconds on the monotonic clock).
    func take(key: String, now: Int64) -> TokenBucket.Decision {
        let config = self.config
        let decision = state.withLockedValue { state -> TokenBucket.Decision in
            if state.buckets.count >= Self.pruneThreshold, state.buckets[key] == nil {
                if state.lastPrune.map({ now &- $0 >= Self.pruneInterval }) ?? true {
                    state.lastPrune = now
                    state.buckets = state.buckets.filter { _, bucket in
                        var bucket = bucket
                        return !bucket.isFull(now: now)
                    }
                }
                if state.buckets.count >= Self.hardCap { state.buckets.removeAll(keepingCapacity: true) }
            }
            return state.buckets[key, default: TokenBucket(
                capacity: config.burst, refillTokens: config.requests,
                refillIntervalNanoseconds: config.per.nanoseconds, now: now)].take(now: now)
        }
        if case .limited = decision { limitedCounter?.increment() }
        return decision
    }

    /// The request's key under this policy.
    func key(clientAddress: String, headers: HTTPFieldList) -> String {
        switch config.key {
        case .clientIP: return clientAddress
        case .header(let name): return headers.firstValue(named: name) ?? ""
        }
    }
}
