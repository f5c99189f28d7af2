/// Envoy's circuit-breaking thresholds for one service that are counted per request: a cap on
/// requests waiting for a connection, and a cap on requests per connection. (The cap on open
/// connections is the upstream pool's own `maxConnections`.)
///
/// The limits are per event loop. Envoy's breakers are shared by every worker of a cluster; the
/// gateway keeps one breaker per service per event loop instead, so the request path takes no
/// lock that other loops contend for, and it divides nothing: with L loops a service may see up
/// to L × `maxPendingRequests` waiting requests.
///
/// The shell reports every change; the breaker only counts and says yes or no.
public struct CircuitBreaker: Sendable, Equatable {
    /// `nil` is unlimited.
    public struct Settings: Sendable, Equatable {
        /// Requests waiting for a connection (Envoy's `max_pending_requests`); 0 lets none wait.
        public var maxPendingRequests: Int?
        /// Requests a connection serves before it is closed (Envoy's
        /// `max_requests_per_connection`); 0 or less is unlimited, as in Istio; 1 turns
        /// keep-alive off.
        public var maxRequestsPerConnection: Int?

        public init(maxPendingRequests: Int? = nil, maxRequestsPerConnection: Int? = nil) {
            self.maxPendingRequests = maxPendingRequests
            self.maxRequestsPerConnection = maxRequestsPerConnection
        }
    }

    public let settings: Settings

    public private(set) var pendingRequests = 0
    /// Requests refused because `maxPendingRequests` were already waiting, each answered 503
    /// (Envoy's `upstream_rq_pending_overflow`).
    public private(set) var overflowCount = 0

    public init(settings: Settings) {
        self.settings = settings
    }

    /// A request must wait for a connection. False: too many wait already; answer 503 at once
    /// rather than let the queue, and the latency of everything in it, grow.
    public mutating func requestQueued() -> Bool {
        if let limit = settings.maxPendingRequests, pendingRequests >= limit {
            overflowCount += 1
            return false
        }
        pendingRequests += 1
        return true
    }

    /// A waiting request got its connection, or gave up.
    public mutating func requestDequeued() {
        if pendingRequests > 0 { pendingRequests -= 1 }
    }

    /// Whether a connection that has served `count` requests should be closed instead of reused.
    public func shouldRetireConnection(afterRequests count: Int) -> Bool {
        guard let limit = settings.maxRequestsPerConnection, limit > 0 else { return false }
        return count >= limit
    }
}
