import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import PorticoConfig
import PorticoCore
import Prometheus

/// One `rateLimit` policy: a token bucket per key, shared by every event loop.
///
/// The limit is the gateway's, not each loop's (as Envoy's local rate limit shares its bucket
/// across workers), so the buckets sit behind one lock; it is held for a dictionary look-up and
/// a few integer operations, and only requests on routes that use the policy take it.
final class RateLimiter: Sendable {
    let policyName: String
    let config: RateLimitConfig
    private let buckets = NIOLockedValueBox<[String: TokenBucket]>([:])
    private let limitedCounter: Counter?

    /// Above this many keys, buckets that have refilled completely are forgotten: a client
    /// that comes back finds a full bucket either way.
    private static let pruneThreshold = 10_000

    init(policyName: String, config: RateLimitConfig, metrics: GatewayMetrics?) {
        self.policyName = policyName
        self.config = config
        self.limitedCounter = metrics?.rateLimitedCounter(policy: policyName)
    }

    /// Takes a token for `key` at `now` (nanoseconds on the monotonic clock).
    func take(key: String, now: Int64) -> TokenBucket.Decision {
        let config = self.config
        let decision = buckets.withLockedValue { buckets -> TokenBucket.Decision in
            if buckets.count >= Self.pruneThreshold && buckets[key] == nil {
                buckets = buckets.filter { _, bucket in
                    var bucket = bucket
                    return !bucket.isFull(now: now)
                }
            }
            return buckets[key, default: TokenBucket(
                capacity: config.burst, refillTokens: config.requests,
                refillIntervalNanoseconds: config.per.nanoseconds, now: now)].take(now: now)
        }
        if case .limited = decision { limitedCounter?.increment() }
        return decision
    }

    /// The request's key under this policy.
    func key(clientAddress: String, headers: HTTPHeaders) -> String {
        switch config.key {
        case .clientIP: return clientAddress
        case .header(let name): return headers.first(name: name) ?? ""
        }
    }
}
