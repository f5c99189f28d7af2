import PorticoCore
import XCTest

final class CircuitBreakerTests: XCTestCase {
    func testWithoutLimitsEverythingIsAllowed() {
        var breaker = CircuitBreaker(settings: .init())
        for _ in 0..<10_000 {
            XCTAssertTrue(breaker.connectionOpening())
            XCTAssertTrue(breaker.requestQueued())
        }
        XCTAssertEqual(breaker.openConnections, 10_000)
        XCTAssertEqual(breaker.pendingRequests, 10_000)
        XCTAssertEqual(breaker.overflowCount, 0)
        XCTAssertEqual(breaker.connectionOverflowCount, 0)
        XCTAssertFalse(breaker.shouldRetireConnection(afterRequests: 1_000_000))
    }

    func testMaxConnectionsRefusesTheConnectionOverTheLimitUntilOneCloses() {
        var breaker = CircuitBreaker(settings: .init(maxConnections: 2))
        XCTAssertTrue(breaker.connectionOpening())
        XCTAssertTrue(breaker.connectionOpening())
        XCTAssertFalse(breaker.connectionOpening())
        XCTAssertFalse(breaker.connectionOpening())
        XCTAssertEqual(breaker.openConnections, 2)
        XCTAssertEqual(breaker.connectionOverflowCount, 2)
        XCTAssertEqual(breaker.overflowCount, 0)

        breaker.connectionClosed()
        XCTAssertEqual(breaker.openConnections, 1)
        XCTAssertTrue(breaker.connectionOpening())
        XCTAssertFalse(breaker.connectionOpening())
        XCTAssertEqual(breaker.connectionOverflowCount, 3)
    }

    func testAnEmptyPoolGetsAConnectionEvenAtTheLimit() {
        var breaker = CircuitBreaker(settings: .init(maxConnections: 1))
        XCTAssertTrue(breaker.connectionOpening())
        XCTAssertFalse(breaker.connectionOpening(poolIsEmpty: false))
        XCTAssertTrue(breaker.connectionOpening(poolIsEmpty: true))
        XCTAssertEqual(breaker.openConnections, 2)
        // The limit was still hit, and counts as such.
        XCTAssertEqual(breaker.connectionOverflowCount, 2)
        breaker.connectionClosed()
        XCTAssertFalse(breaker.connectionOpening())
    }

    func testMaxPendingRequestsRefusesTheRequestOverTheLimit() {
        var breaker = CircuitBreaker(settings: .init(maxPendingRequests: 2))
        XCTAssertTrue(breaker.requestQueued())
        XCTAssertTrue(breaker.requestQueued())
        XCTAssertFalse(breaker.requestQueued())
        XCTAssertEqual(breaker.pendingRequests, 2)
        XCTAssertEqual(breaker.overflowCount, 1)
        XCTAssertEqual(breaker.connectionOverflowCount, 0)

        breaker.requestDequeued()
        XCTAssertEqual(breaker.pendingRequests, 1)
        XCTAssertTrue(breaker.requestQueued())
        XCTAssertFalse(breaker.requestQueued())
        XCTAssertEqual(breaker.overflowCount, 2)
    }

    func testZeroPendingRequestsLetsNoneWait() {
        var breaker = CircuitBreaker(settings: .init(maxPendingRequests: 0))
        XCTAssertFalse(breaker.requestQueued())
        XCTAssertFalse(breaker.requestQueued())
        XCTAssertEqual(breaker.pendingRequests, 0)
        XCTAssertEqual(breaker.overflowCount, 2)
    }

    func testTheLimitsAreIndependent() {
        var breaker = CircuitBreaker(settings: .init(maxConnections: 1, maxPendingRequests: 1))
        XCTAssertTrue(breaker.connectionOpening())
        XCTAssertTrue(breaker.requestQueued())
        XCTAssertFalse(breaker.connectionOpening())
        XCTAssertFalse(breaker.requestQueued())
        XCTAssertEqual(breaker.connectionOverflowCount, 1)
        XCTAssertEqual(breaker.overflowCount, 1)
    }

    func testCountsNeverGoBelowZero() {
        var breaker = CircuitBreaker(settings: .init(maxConnections: 1, maxPendingRequests: 1))
        breaker.connectionClosed()
        breaker.requestDequeued()
        XCTAssertEqual(breaker.openConnections, 0)
        XCTAssertEqual(breaker.pendingRequests, 0)
        // A stray close must not make room for a second connection.
        XCTAssertTrue(breaker.connectionOpening())
        XCTAssertFalse(breaker.connectionOpening())
        XCTAssertTrue(breaker.requestQueued())
        XCTAssertFalse(breaker.requestQueued())
    }

    func testMaxRequestsPerConnectionRetiresAConnectionThatServedThatMany() {
        let breaker = CircuitBreaker(settings: .init(maxRequestsPerConnection: 3))
        XCTAssertFalse(breaker.shouldRetireConnection(afterRequests: 1))
        XCTAssertFalse(breaker.shouldRetireConnection(afterRequests: 2))
        XCTAssertTrue(breaker.shouldRetireConnection(afterRequests: 3))
        XCTAssertTrue(breaker.shouldRetireConnection(afterRequests: 4))

        // One request per connection: keep-alive off.
        let noKeepAlive = CircuitBreaker(settings: .init(maxRequestsPerConnection: 1))
        XCTAssertTrue(noKeepAlive.shouldRetireConnection(afterRequests: 1))

        // Istio's 0 is unlimited.
        let zero = CircuitBreaker(settings: .init(maxRequestsPerConnection: 0))
        XCTAssertFalse(zero.shouldRetireConnection(afterRequests: 1))
        XCTAssertFalse(zero.shouldRetireConnection(afterRequests: 1_000_000))
    }
}
