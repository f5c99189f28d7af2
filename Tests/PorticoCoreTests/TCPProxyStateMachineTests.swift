import PorticoCore
import XCTest

/// One proxied connection, event by event: routing, connect attempts, half-closes, timeouts.
final class TCPProxyStateMachineTests: XCTestCase {
    private func relaying() -> TCPProxyStateMachine {
        var machine = TCPProxyStateMachine(readsHelloFirst: false, maxConnectAttempts: 3)
        XCTAssertEqual(machine.accepted(), .connect(attempt: 1))
        XCTAssertEqual(machine.connected(), .startRelay(shutdownUpstreamOutput: false))
        return machine
    }

    func testHalfClosesPassThroughAndThePairEndsWhenBothWaysAreDone() {
        var machine = relaying()
        XCTAssertEqual(machine.inputClosed(.client), .shutdownOutput(.upstream))
        XCTAssertEqual(machine.inputClosed(.client), .none, "a second FIN changes nothing")
        XCTAssertNil(machine.end, "the upstream may still answer")
        XCTAssertEqual(machine.inputClosed(.upstream), .close(.completed))
        XCTAssertEqual(machine.end, .completed)
        XCTAssertEqual(machine.closed(.client), .none)

        var other = relaying()
        XCTAssertEqual(other.inputClosed(.upstream), .shutdownOutput(.client))
        XCTAssertEqual(other.inputClosed(.client), .close(.completed))
    }

    func testASideThatClosesAfterTheOthersFINCompletesThePair() {
        var machine = relaying()
        XCTAssertEqual(machine.inputClosed(.client), .shutdownOutput(.upstream))
        XCTAssertEqual(machine.closed(.upstream), .close(.completed))
    }

    func testASideThatGoesAwayEndsBoth() {
        var machine = relaying()
        XCTAssertEqual(machine.closed(.upstream), .close(.upstreamClosed))
        var other = relaying()
        XCTAssertEqual(other.inputClosed(.client), .shutdownOutput(.upstream))
        XCTAssertEqual(other.closed(.client), .close(.clientClosed), "the client left while the upstream was still sending")
    }

    func testAFINBeforeTheUpstreamIsConnectedIsPassedOnOnceItIs() {
        var machine = TCPProxyStateMachine(readsHelloFirst: false, maxConnectAttempts: 3)
        XCTAssertEqual(machine.accepted(), .connect(attempt: 1))
        XCTAssertEqual(machine.inputClosed(.client), .none)
        XCTAssertEqual(machine.connected(), .startRelay(shutdownUpstreamOutput: true))
        XCTAssertEqual(machine.inputClosed(.upstream), .close(.completed))
    }

    func testConnectAttemptsAreBounded() {
        var machine = TCPProxyStateMachine(readsHelloFirst: false, maxConnectAttempts: 3)
        XCTAssertEqual(machine.accepted(), .connect(attempt: 1))
        XCTAssertEqual(machine.connectFailed(endpointsLeft: true), .connect(attempt: 2))
        XCTAssertEqual(machine.connectFailed(endpointsLeft: true), .connect(attempt: 3))
        XCTAssertEqual(machine.connectFailed(endpointsLeft: true), .close(.connectFailed))

        var fewEndpoints = TCPProxyStateMachine(readsHelloFirst: false, maxConnectAttempts: 3)
        _ = fewEndpoints.accepted()
        XCTAssertEqual(fewEndpoints.connectFailed(endpointsLeft: false), .close(.connectFailed))

        var full = TCPProxyStateMachine(readsHelloFirst: false, maxConnectAttempts: 3)
        _ = full.accepted()
        XCTAssertEqual(full.noEndpointFree(), .close(.overflow))
    }

    func testSNIRouting() {
        var machine = TCPProxyStateMachine(readsHelloFirst: true, maxConnectAttempts: 3)
        XCTAssertEqual(machine.accepted(), .none, "it waits for the ClientHello")
        XCTAssertTrue(machine.isReadingHello)
        XCTAssertEqual(machine.helloRouted(toService: true), .connect(attempt: 1))
        XCTAssertEqual(machine.helloTimedOut(), .none, "the hello came in time")

        var unknown = TCPProxyStateMachine(readsHelloFirst: true, maxConnectAttempts: 3)
        XCTAssertEqual(unknown.helloRouted(toService: false), .close(.noRoute))

        var malformed = TCPProxyStateMachine(readsHelloFirst: true, maxConnectAttempts: 3)
        XCTAssertEqual(malformed.helloFailed(), .close(.badHello))

        var slow = TCPProxyStateMachine(readsHelloFirst: true, maxConnectAttempts: 3)
        XCTAssertEqual(slow.helloTimedOut(), .close(.helloTimeout))
        XCTAssertEqual(slow.helloRouted(toService: true), .none, "too late")

        var quitter = TCPProxyStateMachine(readsHelloFirst: true, maxConnectAttempts: 3)
        XCTAssertEqual(quitter.inputClosed(.client), .close(.badHello))
    }

    func testShutdownClosesWhateverTheState() {
        var relaying = relaying()
        XCTAssertEqual(relaying.shutDown(), .close(.shutdown))
        var hello = TCPProxyStateMachine(readsHelloFirst: true, maxConnectAttempts: 3)
        XCTAssertEqual(hello.shutDown(), .close(.shutdown))
        XCTAssertEqual(hello.shutDown(), .none)
    }

    func testIdleTimeoutAndEventsAfterTheEnd() {
        var machine = relaying()
        XCTAssertEqual(machine.idleTimedOut(), .close(.idleTimeout))
        XCTAssertEqual(machine.idleTimedOut(), .none)
        XCTAssertEqual(machine.inputClosed(.upstream), .none)
        XCTAssertEqual(machine.closed(.upstream), .none)
        XCTAssertEqual(machine.connected(), .none)
        XCTAssertEqual(machine.end, .idleTimeout)
    }
}
