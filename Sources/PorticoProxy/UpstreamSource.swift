import NIOCore
import PorticoConfig

/// Where a try gets its upstream from: a pool of one endpoint's connections on one event loop,
/// HTTP/1.1 (`UpstreamPool`, a connection per request) or HTTP/2 (`HTTP2UpstreamPool`, a
/// stream per request on shared connections). The exchange asks for a `LeasedUpstream` and
/// never learns which.
protocol UpstreamSource: AnyObject {
    var endpoint: HostPort { get }
    /// Asks for an upstream for `waiter`, which hears on this loop, possibly before `lease`
    /// returns. The returned id cancels the wait.
    @discardableResult
    func lease(for waiter: any UpstreamLeaseWaiter) -> Int
    func cancelLease(_ id: Int)
    /// Closes what is idle and lets the rest finish; no new lease succeeds.
    func shutdown()
    /// For the admin API: connections open, and those with nothing in flight.
    var openConnections: Int { get }
    var idleConnections: Int { get }
}

/// Waits for an upstream from an `UpstreamSource`: a request, or a mirrored copy of one. An
/// object rather than a closure, so leasing allocates nothing.
protocol UpstreamLeaseWaiter: AnyObject {
    /// Runs on the pool's loop, possibly before `lease` returns. A waiter that no longer wants
    /// the upstream gives it back with `release`.
    func leaseCompleted(_ result: Result<any LeasedUpstream, UpstreamPoolError>)
}
