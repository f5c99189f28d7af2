/// A token bucket on a caller-supplied clock: `capacity` tokens at most, `refillTokens` added
/// every `refillInterval` nanoseconds (continuously, in proportion to the time elapsed).
///
/// Pure: the rate limiter passes the time in, so tests drive it without sleeping.
public struct TokenBucket: Sendable, Equatable {
    public enum Decision: Sendable, Equatable {
        case allowed
        /// Denied; a token will be there in this many nanoseconds.
        case limited(retryAfterNanoseconds: Int64)
    }

    public let capacity: Int
    public let refillTokens: Int
    public let refillInterval: Int64
    /// Tokens scaled by `refillInterval`, so partial refills stay exact in integers.
    private var scaledTokens: Int64
    private var updatedAt: Int64

    public init(capacity: Int, refillTokens: Int, refillIntervalNanoseconds: Int64, now: Int64) {
        precondition(capacity > 0 && refillTokens > 0 && refillIntervalNanoseconds > 0)
        self.capacity = capacity
        self.refillTokens = refillTokens
        self.refillInterval = refillIntervalNanoseconds
        // Multiplied out in Int64: a capacity of a billion and an interval of an hour would
        // overflow, so the scale saturates (only precision is lost there, not correctness).
        self.scaledTokens = Self.scale(Int64(capacity), refillIntervalNanoseconds)
        self.updatedAt = now
    }

    private static func scale(_ tokens: Int64, _ interval: Int64) -> Int64 {
        let (product, overflow) = tokens.multipliedReportingOverflow(by: interval)
        return overflow ? .max : product
    }

    private var scaledCapacity: Int64 { Self.scale(Int64(capacity), refillInterval) }

    /// Tokens available at `now` (whole tokens).
    public mutating func available(now: Int64) -> Int {
        refill(now: now)
        return Int(scaledTokens / refillInterval)
    }

    /// Whether the bucket is full at `now`: such a bucket can be forgotten and made anew.
    public mutating func isFull(now: Int64) -> Bool {
        refill(now: now)
        return scaledTokens >= scaledCapacity
    }

    /// Takes one token if there is one.
    public mutating func take(now: Int64) -> Decision {
        refill(now: now)
        if scaledTokens >= refillInterval {
            scaledTokens -= refillInterval
            return .allowed
        }
        // One token is `refillInterval` scaled units; they come back at `refillTokens` per
        // nanosecond of scaled time.
        let missing = refillInterval - scaledTokens
        let wait = (missing + Int64(refillTokens) - 1) / Int64(refillTokens)
        return .limited(retryAfterNanoseconds: max(1, wait))
    }

    private mutating func refill(now: Int64) {
        guard now > updatedAt else { return }
        let elapsed = now - updatedAt
        updatedAt = now
        let (added, overflow) = elapsed.multipliedReportingOverflow(by: Int64(refillTokens))
        let capacity = scaledCapacity
        if overflow || added >= capacity - scaledTokens {
            scaledTokens = capacity
        } else {
            scaledTokens += added
        }
    }
}
