import NIOCore

/// `rateLimit`: a token bucket per key, on this event loop's share of the limit. 429 with
/// `Retry-After` in whole seconds, rounded up (RFC 9110 10.2.3: "0" would invite an immediate
/// retry).
final class RateLimitLayer: RequestLayer {
    /// The listener's limiters, then the route's that the listener does not name.
    let limiters: [RateLimiter]

    init(limiters: [RateLimiter]) {
        self.limiters = limiters
    }

    func requestHead(_ request: inout LayerRequest) -> LayerVerdict {
        let now = Int64(truncatingIfNeeded: NIODeadline.now().uptimeNanoseconds)
        for limiter in limiters {
            let key = limiter.key(clientAddress: request.connection.clientAddress, headers: request.head.fields)
            guard case .limited(let wait) = limiter.take(key: key, now: now) else { continue }
            let seconds = max(1, wait / 1_000_000_000 + (wait % 1_000_000_000 == 0 ? 0 : 1))
            return .reject(status: .tooManyRequests, headers: [("retry-after", String(seconds))], backend: "rate_limit", reason: .rateLimited)
        }
        return .proceed
    }
}
