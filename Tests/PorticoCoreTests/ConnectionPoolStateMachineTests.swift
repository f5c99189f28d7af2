import PorticoCore
import XCTest

final class ConnectionPoolStateMachineTests: XCTestCase {
    typealias Pool = ConnectionPoolStateMachine<String, Int>

    func testFirstLeaseOpensAConnectionAndHandsItToTheWaiter() {
        var pool = Pool(maxConnections: 2)
        XCTAssertEqual(pool.leaseRequested(by: 1), .createConnection)
        XCTAssertEqual(pool.connectingCount, 1)
        XCTAssertEqual(pool.connectionEstablished("c1"), .lease("c1", to: 1))
        XCTAssertEqual(pool.leasedCount, 1)
    }

    func testReleasedConnectionIsReusedByTheNextRequest() {
        var pool = Pool(maxConnections: 2)
        _ = pool.leaseRequested(by: 1)
        _ = pool.connectionEstablished("c1")
        XCTAssertEqual(pool.connectionReleased("c1", reusable: true), .none)
        XCTAssertEqual(pool.idleCount, 1)
        XCTAssertEqual(pool.leaseRequested(by: 2), .lease("c1", to: 2))
        XCTAssertEqual(pool.idleCount, 0)
    }

    func testCapQueuesWaitersAndReleaseServesThemInOrder() {
        var pool = Pool(maxConnections: 1)
        XCTAssertEqual(pool.leaseRequested(by: 1), .createConnection)
        XCTAssertEqual(pool.leaseRequested(by: 2), .none, "at the cap: the waiter queues")
        XCTAssertEqual(pool.leaseRequested(by: 3), .none)
        XCTAssertEqual(pool.connectionEstablished("c1"), .lease("c1", to: 1))
        XCTAssertEqual(pool.connectionReleased("c1", reusable: true), .lease("c1", to: 2))
        XCTAssertEqual(pool.connectionReleased("c1", reusable: true), .lease("c1", to: 3))
        XCTAssertEqual(pool.connectionReleased("c1", reusable: true), .none)
        XCTAssertEqual(pool.openCount, 1)
    }

    func testNotReusableReleaseOpensAReplacementForAWaiter() {
        var pool = Pool(maxConnections: 1)
        _ = pool.leaseRequested(by: 1)
        _ = pool.connectionEstablished("c1")
        XCTAssertEqual(pool.leaseRequested(by: 2), .none)
        XCTAssertEqual(pool.connectionReleased("c1", reusable: false), .createConnection)
        XCTAssertEqual(pool.connectionEstablished("c2"), .lease("c2", to: 2))
    }

    func testNotReusableReleaseWithoutWaitersOpensNothing() {
        var pool = Pool(maxConnections: 4)
        _ = pool.leaseRequested(by: 1)
        _ = pool.connectionEstablished("c1")
        XCTAssertEqual(pool.connectionReleased("c1", reusable: false), .none)
        XCTAssertEqual(pool.openCount, 0)
    }

    func testConnectFailureFailsTheWaiter() {
        var pool = Pool(maxConnections: 4)
        XCTAssertEqual(pool.leaseRequested(by: 1), .createConnection)
        XCTAssertEqual(pool.connectionFailed(), .failWaiter(1, .connectFailed))
        XCTAssertEqual(pool.waiterCount, 0)
        XCTAssertEqual(pool.connectingCount, 0)
    }

    func testBurstOpensOneConnectionPerWaiterUpToTheCap() {
        var pool = Pool(maxConnections: 2)
        XCTAssertEqual(pool.leaseRequested(by: 1), .createConnection)
        XCTAssertEqual(pool.leaseRequested(by: 2), .createConnection)
        XCTAssertEqual(pool.leaseRequested(by: 3), .none)
        XCTAssertEqual(pool.connectingCount, 2)
    }

    func testCancelledWaiterIsNotServed() {
        var pool = Pool(maxConnections: 1)
        _ = pool.leaseRequested(by: 1)
        _ = pool.leaseRequested(by: 2)
        _ = pool.waiterCancelled(1)
        XCTAssertEqual(pool.connectionEstablished("c1"), .lease("c1", to: 2))
    }

    func testIdleConnectionClosedByPeerIsForgotten() {
        var pool = Pool(maxConnections: 1)
        _ = pool.leaseRequested(by: 1)
        _ = pool.connectionEstablished("c1")
        _ = pool.connectionReleased("c1", reusable: true)
        XCTAssertEqual(pool.connectionClosed("c1"), .none)
        XCTAssertEqual(pool.leaseRequested(by: 2), .createConnection, "a closed connection is never leased")
    }

    func testTooManyWaitersFailsAtOnce() {
        var pool = Pool(maxConnections: 1, maxWaiters: 1)
        XCTAssertEqual(pool.leaseRequested(by: 1), .createConnection)
        XCTAssertEqual(pool.leaseRequested(by: 2), .failWaiter(2, .tooManyWaiters))
    }

    func testShutdownClosesIdleAndFailsWaiters() {
        var pool = Pool(maxConnections: 2)
        _ = pool.leaseRequested(by: 1)
        _ = pool.connectionEstablished("c1")
        _ = pool.connectionReleased("c1", reusable: true)
        _ = pool.leaseRequested(by: 2)  // takes c1
        _ = pool.leaseRequested(by: 3)  // connecting
        XCTAssertEqual(pool.shutdown(), .closeAll(connections: [], waiters: [3]))
        XCTAssertEqual(pool.connectionReleased("c1", reusable: true), .closeConnection("c1"))
        XCTAssertEqual(pool.connectionEstablished("c2"), .closeConnection("c2"))
        XCTAssertEqual(pool.leaseRequested(by: 4), .failWaiter(4, .shuttingDown))
    }

    func testManyWaitersKeepOrderAcrossCompaction() {
        var pool = Pool(maxConnections: 1, maxWaiters: 10_000)
        _ = pool.leaseRequested(by: 0)
        for waiter in 1...300 { XCTAssertEqual(pool.leaseRequested(by: waiter), .none) }
        XCTAssertEqual(pool.connectionEstablished("c"), .lease("c", to: 0))
        for waiter in 1...300 {
            XCTAssertEqual(pool.connectionReleased("c", reusable: true), .lease("c", to: waiter))
        }
        XCTAssertEqual(pool.waiterCount, 0)
    }
}
