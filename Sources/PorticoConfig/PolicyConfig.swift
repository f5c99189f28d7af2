/// A named request policy from the top-level `policies:` section. Routes and listeners name
/// the policies they apply (`policies: [per-ip]`); a listener's apply to every route on it,
/// before the route's own.
public struct PolicyConfig: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        case rateLimit(RateLimitConfig)
        case jwt(JWTConfig)
        case authorization(AuthorizationConfig)
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
        // gRPC status names as Envoy's `retry_on` spells them: a trailers-only answer's
        // `grpc-status`.
        case grpcCancelled = "cancelled"
        case grpcDeadlineExceeded = "deadline-exceeded"
        case grpcInternal = "internal"
        case grpcResourceExhausted = "resource-exhausted"
        case grpcUnavailable = "unavailable"
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

/// How many retries a service takes: over `interval`, `percent` of its requests plus
/// `minRetriesPerSecond` for each second of the interval plus `minRetries` (Linkerd's retry
/// budget: `retryRatio` 0.2, `minRetriesPerSecond` 10, `ttl` 10s).
public struct RetryBudgetConfig: Sendable, Equatable {
    public var percent: Int
    public var interval: ConfigDuration
    public var minRetriesPerSecond: Int
    /// Retries per interval on top of the per-second floor. Before the per-second floor it was
    /// the only floor (default 3), which allowed 0.3 retries a second; kept so such configs load.
    public var minRetries: Int

    public init(percent: Int = 20, interval: ConfigDuration = .seconds(10), minRetriesPerSecond: Int = 10, minRetries: Int = 0) {
        self.percent = percent
        self.interval = interval
        self.minRetriesPerSecond = minRetriesPerSecond
        self.minRetries = minRetries
    }
}

/// JWT authentication, as Istio's RequestAuthentication and Envoy's `jwt_authn` have it: the
/// token must be signed by a key of the issuer's JWKS and name the issuer and an audience.
public struct JWTConfig: Sendable, Equatable {
    public enum KeySource: Sendable, Hashable {
        /// A JWKS file, read again at each config reload, when older than `cacheDuration`, and on a token with an unknown `kid`.
        case file(String)
        /// An http(s) URL, fetched, cached and refreshed.
        case url(String)
    }

    /// Where the token is.
    public enum TokenLocation: Sendable, Equatable {
        /// A request header (lower-cased name), after `prefix` (`Bearer ` for Authorization).
        case header(name: String, prefix: String)
        case query(String)
    }

    public var issuer: String
    public var audiences: [String]
    public var keys: KeySource
    public var from: TokenLocation
    /// Leeway for `exp` and `nbf`.
    public var clockSkew: ConfigDuration
    /// A request without a token passes (with no claims); an invalid token never does.
    public var optional: Bool
    /// Keep the token on the request to the backend (Istio's `forwardOriginalToken`); by
    /// default it is removed, so a backend never sees credentials it did not need.
    public var forwardOriginalToken: Bool
    /// Sets this header to the verified payload (base64url JSON), as Istio's `outputPayloadToHeader`.
    public var forwardHeader: String?
    public var claimToHeaders: [ClaimToHeader]
    /// A JWKS URL is fetched again this often.
    public var cacheDuration: ConfigDuration
    /// A token with an unknown `kid` makes Portico fetch the keys again, at most this often.
    public var minRefreshInterval: ConfigDuration

    public struct ClaimToHeader: Sendable, Equatable {
        public var claim: String
        public var header: String
        public init(claim: String, header: String) {
            self.claim = claim
            self.header = header
        }
    }

    public init(issuer: String, audiences: [String] = [], keys: KeySource,
                from: TokenLocation = .header(name: "authorization", prefix: "Bearer "),
                clockSkew: ConfigDuration = .seconds(60), optional: Bool = false, forwardOriginalToken: Bool = false,
                forwardHeader: String? = nil, claimToHeaders: [ClaimToHeader] = [],
                cacheDuration: ConfigDuration = .seconds(300), minRefreshInterval: ConfigDuration = .seconds(10)) {
        self.issuer = issuer
        self.audiences = audiences
        self.keys = keys
        self.from = from
        self.clockSkew = clockSkew
        self.optional = optional
        self.forwardOriginalToken = forwardOriginalToken
        self.forwardHeader = forwardHeader
        self.claimToHeaders = claimToHeaders
        self.cacheDuration = cacheDuration
        self.minRefreshInterval = minRefreshInterval
    }
}

/// Istio AuthorizationPolicy with ALLOW rules: a request passes if any rule matches; if none
/// does, 403. Strings match exactly, by `prefix*`, by `*suffix`, or `*` (present at all).
public struct AuthorizationConfig: Sendable, Equatable {
    public struct Rule: Sendable, Equatable {
        /// Client-certificate identities (SPIFFE URI, DNS name or subject); nil: not checked.
        public var principals: [String]?
        /// `iss/sub` of the request's verified JWT; nil: not checked.
        public var requestPrincipals: [String]?
        public var methods: [String]?
        public var paths: [String]?
        public var hosts: [String]?
        /// Claim name and the values it may have (JWT claims verified by a `jwt` policy).
        public var claims: [Claim]

        public struct Claim: Sendable, Equatable {
            public var name: String
            public var values: [String]
            public init(name: String, values: [String]) {
                self.name = name
                self.values = values
            }
        }

        public init(principals: [String]? = nil, requestPrincipals: [String]? = nil, methods: [String]? = nil,
                    paths: [String]? = nil, hosts: [String]? = nil, claims: [Claim] = []) {
            self.principals = principals
            self.requestPrincipals = requestPrincipals
            self.methods = methods
            self.paths = paths
            self.hosts = hosts
            self.claims = claims
        }
    }

    public var rules: [Rule]

    public init(rules: [Rule]) { self.rules = rules }
}
