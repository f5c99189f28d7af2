import XCTest
import PorticoCore

final class HTTP2ConnectionPoolStateMachineTests: XCTestCase {
    typealias Machine = HTTP2ConnectionPoolStateMachine<String, Int>

    func testFirstLeaseOpensOneConnectionAndItServesEveryWaiterUpToItsLimit() {
        var machine = Machine(maxConnections: 4)
        XCTAssertEqual(machine.leaseRequested(by: 1), .createConnection)
        // The connection being opened is expected to take the next waiters too.
        XCTAssertEqual(machine.leaseRequested(by: 2), .none)
        XCTAssertEqual(machine.leaseRequested(by: 3), .none)
        XCTAssertEqual(machine.connectingCount, 1)
        XCTAssertEqual(machine.connectionEstablished("a", maxStreams: 2), .lease("a", to: [1, 2]))
        // Full: the third waits, and another connection opens for it.
        XCTAssertEqual(machine.waiterCount, 1)
        XCTAssertEqual(machine.streamClosed(on: "a"), .lease("a", to: [3]))
        XCTAssertEqual(machine.leaseRequested(by: 4), .createConnection)
        XCTAssertEqual(machine.connectionEstablished("b", maxStreams: 100), .lease("b", to: [4]))
        XCTAssertEqual(machine.openStreams(on: "a"), 2)
        XCTAssertEqual(machine.openStreams(on: "b"), 1)
    }

    func testStreamsShareAnEstablishedConnectionWithoutWaiting() {
        var machine = Machine(maxConnections: 1)
        _ = machine.leaseRequested(by: 1)
        _ = machine.connectionEstablished("a", maxStreams: 100)
        for waiter in 2...50 {
            XCTAssertEqual(machine.leaseRequested(by: waiter), .lease("a", to: [waiter]))
        }
        XCTAssertEqual(machine.openStreams(on: "a"), 50)
        XCTAssertEqual(machine.connectionCount, 1)
    }

    func testTheConnectionLimitMakesWaitersWaitForAFreeStream() {
        var machine = Machine(maxConnections: 1)
        _ = machine.leaseRequested(by: 1)
        _ = machine.connectionEstablished("a", maxStreams: 1)
        XCTAssertEqual(machine.leaseRequested(by: 2), .none)
        XCTAssertEqual(machine.connectingCount, 0)
        XCTAssertEqual(machine.streamClosed(on: "a"), .lease("a", to: [2]))
    }

    func testGoAwayDrainsTheConnectionAndANewOneTakesTheWaiters() {
        var machine = Machine(maxConnections: 1)
        _ = machine.leaseRequested(by: 1)
        _ = machine.connectionEstablished("a", maxStreams: 1)
        XCTAssertEqual(machine.leaseRequested(by: 2), .none)
        // The draining connection no longer counts against the limit.
        XCTAssertEqual(machine.connectionDraining("a"), .createConnection)
        XCTAssertEqual(machine.leaseRequested(by: 3), .none)
        XCTAssertEqual(machine.connectionEstablished("b", maxStreams: 10), .lease("b", to: [2, 3]))
        // Its last stream ends: it closes, and no stream goes on it again.
        XCTAssertEqual(machine.streamClosed(on: "a"), .closeConnection("a"))
        XCTAssertEqual(machine.leaseRequested(by: 4), .lease("b", to: [4]))
    }

    func testAnIdleConnectionThatGetsGoAwayClosesAtOnce() {
        var machine = Machine(maxConnections: 2)
        _ = machine.leaseRequested(by: 1)
        _ = machine.connectionEstablished("a", maxStreams: 10)
        _ = machine.streamClosed(on: "a")
        XCTAssertEqual(machine.connectionDraining("a"), .closeConnection("a"))
        XCTAssertEqual(machine.connectionCount, 0)
        XCTAssertEqual(machine.connectionDraining("a"), .none)
    }

    func testAConnectFailureFailsEveryWaiterWhenNothingElseCanServeThem() {
        var machine = Machine(maxConnections: 2)
        _ = machine.leaseRequested(by: 1)
        _ = machine.leaseRequested(by: 2)
        XCTAssertEqual(machine.connectionFailed(), .failWaiters([1, 2], .connectFailed))
        XCTAssertEqual(machine.waiterCount, 0)
        // The next request tries again.
        XCTAssertEqual(machine.leaseRequested(by: 3), .createConnection)
    }

    func testAConnectFailureLeavesWaitersToALiveConnection() {
        var machine = Machine(maxConnections: 2, assumedStreamsPerConnection: 1)
        _ = machine.leaseRequested(by: 1)
        _ = machine.connectionEstablished("a", maxStreams: 1)
        XCTAssertEqual(machine.leaseRequested(by: 2), .createConnection)
        XCTAssertEqual(machine.connectionFailed(), .none)
        XCTAssertEqual(machine.streamClosed(on: "a"), .lease("a", to: [2]))
    }

    func testMaxStreamsRaisedLaterServesWaiters() {
        var machine = Machine(maxConnections: 1)
        _ = machine.leaseRequested(by: 1)
        XCTAssertEqual(machine.connectionEstablished("a", maxStreams: 0), .none)
        XCTAssertEqual(machine.maxStreamsChanged("a", to: 5), .lease("a", to: [1]))
        XCTAssertEqual(machine.maxStreamsChanged("zzz", to: 5), .none)
    }

    func testWaitersAConnectionCannotTakeOpenAnother() {
        var machine = Machine(maxConnections: 3)
        for waiter in 1...5 { _ = machine.leaseRequested(by: waiter) }
        XCTAssertEqual(machine.connectionEstablished("a", maxStreams: 2), .lease("a", to: [1, 2]))
        XCTAssertEqual(machine.connectionsNeeded(), .createConnection, "three still wait")
        XCTAssertEqual(machine.connectionsNeeded(), .none, "the one being opened is expected to take them")
        XCTAssertEqual(machine.connectionEstablished("b", maxStreams: 2), .lease("b", to: [3, 4]))
        XCTAssertEqual(machine.connectionsNeeded(), .createConnection)
    }

    func testCancelledWaiterIsNotServed() {
        var machine = Machine(maxConnections: 1)
        _ = machine.leaseRequested(by: 1)
        _ = machine.leaseRequested(by: 2)
        XCTAssertEqual(machine.waiterCancelled(1), .none)
        XCTAssertEqual(machine.connectionEstablished("a", maxStreams: 10), .lease("a", to: [2]))
    }

    func testTooManyWaitersFailsAtOnce() {
        var machine = Machine(maxConnections: 1, maxWaiters: 2)
        _ = machine.leaseRequested(by: 1)
        _ = machine.leaseRequested(by: 2)
        XCTAssertEqual(machine.leaseRequested(by: 3), .failWaiters([3], .tooManyWaiters))
    }

    func testAClosedConnectionIsReplacedForWaiters() {
        var machine = Machine(maxConnections: 1)
        _ = machine.leaseRequested(by: 1)
        _ = machine.connectionEstablished("a", maxStreams: 1)
        _ = machine.leaseRequested(by: 2)
        XCTAssertEqual(machine.connectionClosed("a"), .createConnection)
        XCTAssertEqual(machine.connectionClosed("a"), .none)
        // A stream end reported after the close changes nothing.
        XCTAssertEqual(machine.streamClosed(on: "a"), .none)
    }

    func testShutdownClosesIdleConnectionsDrainsBusyOnesAndFailsWaiters() {
        var machine = Machine(maxConnections: 2, assumedStreamsPerConnection: 1)
        _ = machine.leaseRequested(by: 1)
        _ = machine.connectionEstablished("a", maxStreams: 1)
        _ = machine.leaseRequested(by: 2)
        _ = machine.connectionEstablished("b", maxStreams: 1)
        _ = machine.streamClosed(on: "b")
        _ = machine.leaseRequested(by: 3)  // b takes it
        _ = machine.streamClosed(on: "b")
        XCTAssertEqual(machine.shutdown(), .closeAll(connections: ["b"], waiters: []))
        XCTAssertEqual(machine.leaseRequested(by: 4), .failWaiters([4], .shuttingDown))
        XCTAssertEqual(machine.streamClosed(on: "a"), .closeConnection("a"))
    }
}
