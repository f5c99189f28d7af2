import NIOCore
import NIOHTTP1
import PorticoConfig
import PorticoCore

/// The policies of one route, compiled with its config snapshot.
struct RoutePolicies {
    /// The route's own rate limits, in the order it names them.
    let rateLimiters: [RateLimiter]
    let fault: FaultConfig?
    let retries: CompiledRetries?
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

/// What the policy chain decided for a request.
enum PolicyVerdict {
    /// Forward it, after `delay` when fault injection chose to delay it.
    case proceed(delay: TimeAmount?)
    /// Answer it now with `status` (and `headers`); `backend` labels metrics and the access log.
    case reject(status: HTTPResponseStatus, headers: [(String, String)], backend: String)
}

extension RuntimeSnapshot {
    /// The request path's policy chain, assembled here and nowhere else. In order:
    ///
    /// 1. Rate limits, the listener's and then the route's (a policy both name runs once):
    ///    the cheapest way to say no, before any work is spent on the request. Authentication
    ///    and authorization, when they come, go before them, as in Envoy's and Istio's chains,
    ///    so a limit keyed by identity can see the identity.
    /// 2. Fault injection, last, just before the backend is chosen (as Envoy's fault filter
    ///    sits just before the router): a fault only hits requests that would have been served.
    ///    When both the delay and the abort draw hit, the abort is answered at once.
    func evaluatePolicies(route index: Int, listener: String, clientAddress: String, headers: HTTPHeaders,
                          random: inout FastRandom) -> PolicyVerdict {
        let listenerLimiters = listenerRateLimiters.isEmpty ? [] : (listenerRateLimiters[listener] ?? [])
        let route = index < routePolicies.count ? routePolicies[index] : nil
        guard !listenerLimiters.isEmpty || route != nil else { return .proceed(delay: nil) }

        let now = NIODeadline.now().uptimeNanoseconds
        for limiter in listenerLimiters {
            if let rejection = Self.apply(limiter, clientAddress: clientAddress, headers: headers, now: now) {
                return rejection
            }
        }
        guard let route else { return .proceed(delay: nil) }
        for limiter in route.rateLimiters where !listenerLimiters.contains(where: { $0 === limiter }) {
            if let rejection = Self.apply(limiter, clientAddress: clientAddress, headers: headers, now: now) {
                return rejection
            }
        }

        guard let fault = route.fault else { return .proceed(delay: nil) }
        var delay: TimeAmount?
        if let configured = fault.delay, random.percentDraw() < configured.percent {
            delay = .nanoseconds(configured.duration.nanoseconds)
        }
        if let abort = fault.abort, random.percentDraw() < abort.percent {
            return .reject(status: HTTPResponseStatus(statusCode: abort.status), headers: [], backend: "fault")
        }
        return .proceed(delay: delay)
    }

    private static func apply(_ limiter: RateLimiter, clientAddress: String, headers: HTTPHeaders,
                              now: UInt64) -> PolicyVerdict? {
        let key = limiter.key(clientAddress: clientAddress, headers: headers)
        guard case .limited(let wait) = limiter.take(key: key, now: Int64(truncatingIfNeeded: now)) else { return nil }
        // Whole seconds, rounded up (RFC 9110 10.2.3): "0" would invite an immediate retry.
        let seconds = max(1, wait / 1_000_000_000 + (wait % 1_000_000_000 == 0 ? 0 : 1))
        return .reject(status: .tooManyRequests, headers: [("retry-after", String(seconds))], backend: "rate_limit")
    }
}

extension FastRandom {
    /// A uniform draw from [0, 100).
    mutating func percentDraw() -> Double {
        unitDraw() * 100
    }

    /// A uniform draw from [0, 1).
    mutating func unitDraw() -> Double {
        Double(next() >> 11) * 0x1p-53
    }
}
