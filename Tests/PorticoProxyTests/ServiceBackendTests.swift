import NIOCore
import NIOEmbedded
import PorticoConfig
@testable import PorticoProxy
import XCTest

/// A service as a `Backend`, lease by lease, without sockets: the pick, the outcome that feeds
/// outlier detection, the circuit breaker, and the service the next try leases from.
final class ServiceBackendTests: XCTestCase {
    private let endpoints = [HostPort(host: "127.0.0.1", port: 9001), HostPort(host: "127.0.0.1", port: 9002)]
    private let loop = EmbeddedEventLoop()

    private func snapshot(_ services: [ServiceConfig], generation: Int, previous: RuntimeSnapshot? = nil) throws -> RuntimeSnapshot {
        try RuntimeSnapshot(config: GatewayConfig(
            sourceFile: "test.yaml",
            listeners: [ListenerConfig(name: "public", address: HostPort(host: "127.0.0.1", port: 0))],
            admin: nil, limits: LimitsConfig(), services: services, routes: []), generation: generation, previous: previous)
    }

    private func context(_ service: ServiceConfig) throws -> LoopContext {
        LoopContext(eventLoop: loop, loopIndex: 0, snapshot: try snapshot([service], generation: 1),
                    metrics: GatewayMetrics(), accessLogWriter: nil)
    }

    private func lease(_ backend: any Backend, avoiding previous: BackendLease? = nil) throws -> BackendLease {
        let waiter = Waiter()
        backend.lease(id: 1, on: loop, avoiding: previous, for: waiter)
        // A service answers before `lease` returns: the exchange leases as the request starts.
        XCTAssertFalse(backend.leaseMayWait)
        return try XCTUnwrap(waiter.result).get()
    }

    func testALeaseIsAnEndpointAndItsPoolAndARetryAvoidsThePreviousOne() throws {
        let service = ServiceConfig(name: "api", endpoints: endpoints)
        let loopContext = try context(service)
        let backend = loopContext.serviceBackend(for: service)
        let first = try lease(backend)
        XCTAssertEqual(first.endpoint, endpoints[first.slot])
        XCTAssertEqual(first.pool?.endpoint, first.endpoint)
        XCTAssertNil(first.tryTimeout, "the route's timeout bounds a service's tries")
        let second = try lease(backend)
        XCTAssertNotEqual(second.slot, first.slot, "round robin")
        // Round robin's turn is `first`'s endpoint again; a retry of `first` goes elsewhere.
        XCTAssertEqual(try lease(backend, avoiding: first).slot, second.slot)
        XCTAssertEqual(try lease(backend).slot, first.slot)
    }

    func testOutcomesFeedOutlierDetection() throws {
        var service = ServiceConfig(name: "api", endpoints: endpoints)
        service.outlierDetection = OutlierDetectionConfig(consecutive5xx: 2, maxEjectionPercent: 50)
        let loopContext = try context(service)
        let backend = loopContext.serviceBackend(for: service)
        var ejected: BackendLease?
        for _ in 0..<4 {
            let lease = try lease(backend)
            if lease.slot == 0 {
                backend.record(lease, status: 503)
                ejected = lease
            } else {
                backend.record(lease, status: 200)
            }
            backend.release(lease)
        }
        XCTAssertNotNil(ejected)
        for _ in 0..<4 {
            XCTAssertEqual(try lease(backend).slot, 1, "two 503s in a row ejected the first endpoint")
        }
    }

    func testTheCircuitBreakerBoundsWaitsAndReuse() throws {
        var service = ServiceConfig(name: "api", endpoints: endpoints)
        service.circuitBreaker = CircuitBreakerConfig(maxPendingRequests: 1, maxRequestsPerConnection: 2)
        let loopContext = try context(service)
        let backend = loopContext.serviceBackend(for: service)
        XCTAssertTrue(backend.connectionWaitBegins())
        XCTAssertFalse(backend.connectionWaitBegins(), "a second wait on this loop is refused (503)")
        backend.connectionWaitEnds()
        XCTAssertTrue(backend.connectionWaitBegins())
        XCTAssertTrue(backend.mayReuse(connectionThatServed: 1))
        XCTAssertFalse(backend.mayReuse(connectionThatServed: 2))

        let unbounded = ServiceConfig(name: "open", endpoints: endpoints)
        let otherContext = try context(unbounded)
        let other = otherContext.serviceBackend(for: unbounded)
        XCTAssertTrue(other.connectionWaitBegins() && other.connectionWaitBegins())
        XCTAssertTrue(other.mayReuse(connectionThatServed: 1000))
    }

    /// A retry leases from the service as the loop serves it now: a reload may have changed
    /// its endpoints, or removed it (503).
    func testTheNextTryLeasesFromTheServiceAsReloaded() throws {
        let service = ServiceConfig(name: "api", endpoints: endpoints)
        let loopContext = try context(service)
        let backend = loopContext.serviceBackend(for: service)
        let first = try lease(backend)

        loopContext.install(try snapshot([service], generation: 2, previous: loopContext.snapshot))
        XCTAssertTrue(backend.backendForNextTry(after: first) === backend, "an unchanged service is the same backend")

        var moved = service
        moved.endpoints = [HostPort(host: "127.0.0.1", port: 9003)]
        loopContext.install(try snapshot([moved], generation: 3, previous: loopContext.snapshot))
        let next = try XCTUnwrap(backend.backendForNextTry(after: first))
        XCTAssertFalse(next === backend)
        XCTAssertEqual(try lease(next, avoiding: first).endpoint, moved.endpoints[0])

        loopContext.install(try snapshot([], generation: 4, previous: loopContext.snapshot))
        XCTAssertNil(next.backendForNextTry(after: first), "a service a reload removed")
    }
}

private final class Waiter: BackendLeaseWaiter {
    var result: Result<BackendLease, BackendUnavailable>?
    func backendLeased(_ result: Result<BackendLease, BackendUnavailable>) { self.result = result }
}
