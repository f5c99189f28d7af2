/// A named request policy from the top-level `policies:` section. Routes and listeners name
/// the policies they apply (`policies: [per-ip]`); a listener's apply to every route on it,
/// before the route's own.
public struct PolicyConfig: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        case rateLimit(RateLimitConfig)
    }

    public var name: String
    public var kind: Kind
    public var location: SourceLocation

    public init(name: String, kind: Kind, location: SourceLocation) {
        self.name = name
        self.kind = kind
        self.location = location
    }
}

/// A token bucket per key, as Traefik's `rateLimit` (average, period, burst) and Envoy's local
/// rate limit (tokens per fill, max tokens) have it: `requests` tokens come back every `per`,
/// and at most `burst` can be spent at once. Over it: 429 with `Retry-After`.
public struct RateLimitConfig: Sendable, Equatable {
    public enum Key: Sendable, Equatable {
        /// One bucket per client address (the peer of the connection).
        case clientIP
        /// One bucket per value of this request header (lower-cased name); requests without it
        /// share one bucket, so leaving the header out does not escape the limit.
        case header(String)
    }

    public var requests: Int
    public var per: ConfigDuration
    public var burst: Int
    public var key: Key

    public init(requests: Int, per: ConfigDuration, burst: Int? = nil, key: Key = .clientIP) {
        self.requests = requests
        self.per = per
        self.burst = burst ?? requests
        self.key = key
    }
}

/// Fault injection on a route, as Istio's VirtualService `fault` has it: a share of requests
/// is delayed before it is forwarded, and a share is answered at once with an error status,
/// without reaching the backend. Both draw independently; a delayed request can still abort.
public struct FaultConfig: Sendable, Equatable {
    public struct Abort: Sendable, Equatable {
        /// 0 to 100, fractions allowed.
        public var percent: Double
        public var status: Int

        public init(percent: Double, status: Int) {
            self.percent = percent
            self.status = status
        }
    }

    public struct Delay: Sendable, Equatable {
        public var percent: Double
        public var duration: ConfigDuration

        public init(percent: Double, duration: ConfigDuration) {
            self.percent = percent
            self.duration = duration
        }
    }

    public var abort: Abort?
    public var delay: Delay?

    public init(abort: Abort? = nil, delay: Delay? = nil) {
        self.abort = abort
        self.delay = delay
    }
}

/// Retries on a route, as Istio's VirtualService `retries` has them (`attempts` is the number
/// of retries after the first try) with Envoy's `retry_on` conditions.
public struct RetryConfig: Sendable, Equatable {
    public enum Condition: String, Sendable, Equatable, CaseIterable {
        case serverError = "5xx"
        case gatewayError = "gateway-error"
        case connectFailure = "connect-failure"
        case reset = "reset"
        case retriable4xx = "retriable-4xx"
        case refusedStream = "refused-stream"
    }

    public var attempts: Int
    /// Each try's time for the response head; nil: only the route's timeout bounds them.
    public var perTryTimeout: ConfigDuration?
    public var retryOn: [Condition]
    /// A request body up to this size is kept so a retry can send it again; a request with a
    /// larger body is not retried once its body has started to flow.
    public var replayBuffer: Int

    public init(attempts: Int, perTryTimeout: ConfigDuration? = nil,
                retryOn: [Condition] = [.connectFailure, .refusedStream, .gatewayError], replayBuffer: Int = 64 * 1024) {
        self.attempts = attempts
        self.perTryTimeout = perTryTimeout
        self.retryOn = retryOn
        self.replayBuffer = replayBuffer
    }
}

/// How many retries a service takes: at most `percent` of its requests over `interval`, but
/// always `minRetries` (Envoy's retry budget; Linkerd's default is the same 20 % over 10 s).
public struct RetryBudgetConfig: Sendable, Equatable {
    public var percent: Int
    public var interval: ConfigDuration
    public var minRetries: Int

    public init(percent: Int = 20, interval: ConfigDuration = .seconds(10), minRetries: Int = 3) {
        self.percent = percent
        self.interval = interval
        self.minRetries = minRetries
    }
}
