import PorticoCore
import XCTest

final class CircuitBreakerTests: XCTestCase {
    func testWithoutLimitsEverythingIsAllowed() {
        var breaker = CircuitBreaker(settings: .init())
        for _ in 0..<10_000 { XCTAssertTrue(breaker.requestQueued()) }
        XCTAssertEqual(breaker.pendingRequests, 10_000)
        XCTAssertEqual(breaker.overflowCount, 0)
        XCTAssertFalse(breaker.shouldRetireConnection(afterRequests: 1_000_000))
    }

    func testMaxPendingRequestsRefusesTheRequestOverTheLimit() {
        var breaker = CircuitBreaker(settings: .init(maxPendingRequests: 2))
        XCTAssertTrue(breaker.requestQueued())
        XCTAssertTrue(breaker.requestQueued())
        XCTAssertFalse(breaker.requestQueued())
        XCTAssertEqual(breaker.pendingRequests, 2)
        XCTAssertEqual(breaker.overflowCount, 1)

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

    func testCountsNeverGoBelowZero() {
        var breaker = CircuitBreaker(settings: .init(maxPendingRequests: 1))
        breaker.requestDequeued()
        XCTAssertEqual(breaker.pendingRequests, 0)
        // A stray dequeue must not make room for a second waiting request.
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
