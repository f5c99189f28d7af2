import NIOCore

/// Where a route's requests go, as the exchange sees it: a backend leases an endpoint for each
/// try of a request and takes it back with the outcome.
///
/// Services implement it here (`ServiceBackend`: the load balancer's pick, outlier detection and
/// health checks, the circuit breaker); http-mode functions implement it in PorticoFunctions
/// (`FunctionInstance`: a worker, started on demand). The exchange never asks which one it has.
///
/// Every call comes on the request's event loop, and so does every answer to a waiter.
public protocol Backend: AnyObject {
    /// False: `lease` answers before it returns (a service picks one of its endpoints). The
    /// exchange then leases as the request starts, from the config the request matched, even
    /// when a fault delays it; and the route's timeout runs from the start, over every try.
    ///
    /// True: the lease may wait (for a function worker to start). It is asked for once a fault
    /// delay is over; the wait is bounded by the backend, not by the route's timeout, and each
    /// try by the lease's `tryTimeout`.
    var leaseMayWait: Bool { get }

    /// Leases an endpoint for one try of a request made on `loop`. `waiter` hears once, on
    /// `loop`, possibly before this returns. `id` is unique in the process; `cancelLease` takes
    /// it while the lease is still waited for. `previous` is the lease of the try before (a
    /// retry), whose endpoint is best avoided.
    func lease(id: UInt64, on loop: EventLoop, avoiding previous: BackendLease?, for waiter: any BackendLeaseWaiter)

    /// The request no longer waits for the lease asked for under `id`; its waiter hears nothing more.
    func cancelLease(id: UInt64)

    /// What the try came to, for outlier detection: the response's status, or nil when the
    /// endpoint gave no answer (connect failure, reset, timeout).
    func record(_ lease: BackendLease, status: Int?)

    /// The try is over: the endpoint is the backend's again.
    func release(_ lease: BackendLease)

    /// The lease's endpoint refused the connection. True when the backend took the lease back
    /// and replaced the endpoint, so the same try may lease again without counting as a retry
    /// (a function worker that died since it was handed out, as Knative's activator does it).
    /// False leaves the lease held, and the refusal is a connect failure like any other.
    func replaceRefusedEndpoint(_ lease: BackendLease) -> Bool

    /// The backend the next try leases from (a retry, or a lease again after a refusal): a
    /// service as the loop serves it now (a reload may have changed its endpoints meanwhile),
    /// the function revision that gave `previous`. Nil: it is gone, and the request gets 503.
    func backendForNextTry(after previous: BackendLease?) -> (any Backend)?

    /// The try must wait for a connection to its endpoint (none idle, the pool at its limit).
    /// False refuses the wait, and the request gets 503 at once rather than a longer queue (a
    /// service's circuit breaker, `maxPendingRequests`).
    func connectionWaitBegins() -> Bool

    /// A wait that `connectionWaitBegins` allowed is over: a connection came, or the try gave up.
    func connectionWaitEnds()

    /// Whether a connection that has served `requests` requests may go back to the pool for
    /// another (a service's `maxRequestsPerConnection`).
    func mayReuse(connectionThatServed requests: Int) -> Bool

    /// `bytes` more of a request's body arrived while the request waits for its lease and are
    /// held in memory until it has one. False refuses them (a function's `queueBodyLimit`): the
    /// request gets 503. Called from any event loop; what it holds is given back with
    /// `releaseWaitingBody`.
    func holdWaitingBody(_ bytes: Int) -> Bool

    /// Body bytes that `holdWaitingBody` accepted no longer wait (the request has its lease, or ended).
    func releaseWaitingBody(_ bytes: Int)
}

extension Backend {
    public func holdWaitingBody(_ bytes: Int) -> Bool { true }
    public func releaseWaitingBody(_ bytes: Int) {}
    public func connectionWaitBegins() -> Bool { true }
    public func connectionWaitEnds() {}
    public func mayReuse(connectionThatServed requests: Int) -> Bool { true }
}

/// Waits for a backend's lease: an object rather than a closure, so that a lease that answers
/// at once (a service's) allocates nothing.
public protocol BackendLeaseWaiter: AnyObject {
    func backendLeased(_ result: Result<BackendLease, BackendUnavailable>)
}
