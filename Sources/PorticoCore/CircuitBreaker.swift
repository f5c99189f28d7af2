/// Envoy's cluster circuit-breaking thresholds for one service: caps on open connections and
/// on requests waiting for a connection, and a cap on requests per connection.
///
/// The limits are per event loop. Envoy's breakers are shared by every worker of a cluster; the
/// gateway keeps one breaker per service per event loop instead, so the request path takes no
/// lock that other loops contend for, and it divides nothing: with L loops a service may see up
/// to L × `maxConnections` connections and L × `maxPendingRequests` waiting requests.
///
/// The shell reports every change; the breaker only counts and says yes or no.
public struct CircuitBreaker: Sendable, Equatable {
    /// `nil` is unlimited.
    public struct Settings: Sendable, Equatable {
        /// Connections open or being opened (Envoy's `max_connections`).
        public var maxConnections: Int?
        /// Requests waiting for a connection (Envoy's `max_pending_requests`); 0 lets none wait.
        public var maxPendingRequests: Int?
        /// Requests a connection serves before it is closed (Envoy's
        /// `max_requests_per_connection`); 0 or less is unlimited, as in Istio; 1 turns
        /// keep-alive off.
        public var maxRequestsPerConnection: Int?

        public init(maxConnections: Int? = nil, maxPendingRequests: Int? = nil, maxRequestsPerConnection: Int? = nil) {
            self.maxConnections = maxConnections
            self.maxPendingRequests = maxPendingRequests
            self.maxRequestsPerConnection = maxRequestsPerConnection
        }
    }

    public let settings: Settings

    public private(set) var openConnections = 0
    public private(set) var pendingRequests = 0
    /// Requests refused because `maxPendingRequests` were already waiting, each answered 503
    /// (Envoy's `upstream_rq_pending_overflow`).
    public private(set) var overflowCount = 0
    /// Times `maxConnections` was reached when a connection was wanted (Envoy's
    /// `upstream_cx_overflow`).
    public private(set) var connectionOverflowCount = 0

    public init(settings: Settings) {
        self.settings = settings
    }

    /// A connection is about to be opened. False: do not open it; the request waits for one of
    /// the connections already open.
    ///
    /// - Parameter poolIsEmpty: the endpoint's pool has no connection at all, open or opening.
    ///   Its waiting requests could then only be served by a connection freed elsewhere, which
    ///   never comes to this pool, so, as Envoy does, one is opened anyway.
    public mutating func connectionOpening(poolIsEmpty: Bool = false) -> Bool {
        if let limit = settings.maxConnections, openConnections >= limit {
            connectionOverflowCount += 1
            guard poolIsEmpty else { return false }
        }
        openConnections += 1
        return true
    }

    /// A connection closed, or one whose opening was allowed failed to connect.
    public mutating func connectionClosed() {
        if openConnections > 0 { openConnections -= 1 }
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
