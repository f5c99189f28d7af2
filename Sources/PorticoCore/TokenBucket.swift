/// A token bucket on a caller-supplied clock: `capacity` tokens at most, `refillTokens` added
/// every `refillInterval` nanoseconds (continuously, in proportion to the time elapsed).
///
/// Pure: the rate limiter passes the time in, so tests drive it without sleeping. Tokens are
/// kept as a `Double`, as Envoy's token bucket keeps them: any rate the config allows (up to
/// a billion per 24 hours or per millisecond) stays exact to far below one token.
public struct TokenBucket: Sendable, Equatable {
    public enum Decision: Sendable, Equatable {
        case allowed
        /// Denied; a token will be there in this many nanoseconds.
        case limited(retryAfterNanoseconds: Int64)
    }

    public let capacity: Int
    /// Tokens per nanosecond.
    private let rate: Double
    private var tokens: Double
    private var updatedAt: Int64

    /// What is left of a token after the rounding of many small refills still counts as one.
    private static let slack = 1e-9

    public init(capacity: Int, refillTokens: Int, refillIntervalNanoseconds: Int64, now: Int64) {
        precondition(capacity > 0 && refillTokens > 0 && refillIntervalNanoseconds > 0)
        self.capacity = capacity
        self.rate = Double(refillTokens) / Double(refillIntervalNanoseconds)
        self.tokens = Double(capacity)
        self.updatedAt = now
    }

    /// Tokens available at `now` (whole tokens).
    public mutating func available(now: Int64) -> Int {
        refill(now: now)
        return Int(tokens + Self.slack)
    }

    /// Whether the bucket is full at `now`: such a bucket can be forgotten and made anew.
    public mutating func isFull(now: Int64) -> Bool {
        refill(now: now)
        return tokens + Self.slack >= Double(capacity)
    }

    /// Takes one token if there is one.
    public mutating func take(now: Int64) -> Decision {
        refill(now: now)
        if tokens + Self.slack >= 1 {
            tokens = max(0, tokens - 1)
            return .allowed
        }
        let wait = ((1 - tokens) / rate).rounded(.up)
        return .limited(retryAfterNanoseconds: wait >= Double(Int64.max) ? .max : max(1, Int64(wait)))
    }

    private mutating func refill(now: Int64) {
        guard now > updatedAt else { return }
        let elapsed = Double(now) - Double(updatedAt)
        updatedAt = now
        tokens = min(Double(capacity), tokens + elapsed * rate)
    }
}
