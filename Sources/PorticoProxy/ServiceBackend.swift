import NIOCore
import PorticoConfig

/// A service as one event loop serves it: the load balancer picks an endpoint for each try
/// (skipping those outlier detection ejected or health checks failed), the try's outcome goes
/// to outlier detection, and the circuit breaker bounds the requests waiting for a connection
/// and the requests a connection serves.
///
/// One per service per loop (`LoopContext.serviceBackend(for:)`), made again when a reload
/// changes the service. Its state is the loop's: pickers, pools and breakers stay in
/// `LoopContext`, which it reaches without a lock.
final class ServiceBackend: Backend {
    let service: ServiceConfig
    /// Unowned: the loop holds its service backends. It outlives every use of one, as an
    /// exchange that holds a backend also holds (through its handler) the loop.
    private unowned let loop: LoopContext

    init(service: ServiceConfig, loop: LoopContext) {
        self.service = service
        self.loop = loop
    }

    var leaseMayWait: Bool { false }

    func lease(id: UInt64, on eventLoop: EventLoop, avoiding previous: BackendLease?, for waiter: any BackendLeaseWaiter) {
        // Another endpoint is preferred for a retry (least_request and random can pick the same one).
        let choice = loop.pool(for: service, avoiding: previous?.slot)
        waiter.backendLeased(.success(BackendLease(
            endpoint: choice.pool.endpoint, slot: choice.endpointIndex, ticket: choice.health, tryTimeout: nil,
            pool: choice.pool)))
    }

    func cancelLease(id: UInt64) {}

    func record(_ lease: BackendLease, status: Int?) {
        guard let health = lease.ticket as? ServiceHealth else { return }
        if let status {
            health.recordResponse(endpoint: lease.slot, status: status)
        } else {
            health.recordFailure(endpoint: lease.slot)
        }
    }

    func release(_ lease: BackendLease) {
        loop.requestFinished(service: service.name, endpointIndex: lease.slot)
    }

    func replaceRefusedEndpoint(_ lease: BackendLease) -> Bool { false }

    func backendForNextTry(after previous: BackendLease?) -> (any Backend)? {
        loop.snapshot.servicesByName[service.name].map { loop.serviceBackend(for: $0) }
    }

    func connectionWaitBegins() -> Bool {
        guard let breaker = service.circuitBreaker, breaker.maxPendingRequests != nil else { return true }
        return loop.queueRequest(service: service.name, breaker: breaker)
    }

    func connectionWaitEnds() {
        guard service.circuitBreaker?.maxPendingRequests != nil else { return }
        loop.dequeueRequest(service: service.name)
    }

    func mayReuse(connectionThatServed requests: Int) -> Bool {
        // Envoy's max_requests_per_connection: a connection that served its share closes.
        !(service.circuitBreaker?.maxRequestsPerConnection.map { requests >= $0 } ?? false)
    }
}
