import PorticoCore
import XCTest

/// Credit goes back to an HTTP/2 peer only for bytes the upstream took, batched at half the
/// window; the peer can never have more room than the target minus what the gateway holds.
final class InboundFlowCreditTests: XCTestCase {
    func testCreditIsReturnedOnlyForConsumedBytesOnceHalfTheWindowIsUsed() {
        var credit = InboundFlowCredit(target: 1000)
        XCTAssertEqual(credit.received(400), .accepted)
        XCTAssertNil(credit.consumed(400), "600 of 1000 left: no update yet")
        XCTAssertEqual(credit.received(200), .accepted)
        XCTAssertEqual(credit.consumed(100), 500, "the window fell to 400: everything consumed goes back")
        XCTAssertEqual(credit.window, 900)
        XCTAssertEqual(credit.held, 100)
        XCTAssertEqual(credit.window + credit.held + credit.unreturned, 1000)
    }

    func testASlowUpstreamKeepsThePeerWaiting() {
        var credit = InboundFlowCredit(target: 1000)
        XCTAssertEqual(credit.received(1000), .accepted)
        XCTAssertEqual(credit.received(1), .overrun, "a peer past its window is a FLOW_CONTROL_ERROR")
        // The upstream took nothing: no credit, however long the peer waits.
        XCTAssertEqual(credit.window, 0)
        XCTAssertEqual(credit.consumed(10), 10, "each byte taken is room for one more")
        XCTAssertEqual(credit.window, 10)
    }

    func testNeverMoreRoomThanTheTargetLessWhatIsHeld() {
        var credit = InboundFlowCredit(target: 65535)
        var random = SystemRandomNumberGenerator()
        for _ in 0..<10_000 {
            if Bool.random(using: &random), credit.window > 0 {
                XCTAssertEqual(credit.received(Int.random(in: 1...credit.window, using: &random)), .accepted)
            } else if credit.held > 0 {
                _ = credit.consumed(Int.random(in: 1...credit.held, using: &random))
            }
            XCTAssertLessThanOrEqual(credit.window + credit.held, credit.target)
            XCTAssertEqual(credit.window + credit.held + credit.unreturned, credit.target)
        }
    }

    func testHeldBytesOfAResetStreamGoBackToTheConnection() {
        var connection = InboundFlowCredit(target: 1000)
        XCTAssertEqual(connection.received(800), .accepted)
        XCTAssertEqual(connection.discardHeld(), 800)
        XCTAssertEqual(connection.window, 1000)
    }

    func testAChangedInitialWindowMovesTheWindow() {
        var stream = InboundFlowCredit(target: 1000)
        XCTAssertEqual(stream.received(300), .accepted)
        XCTAssertNil(stream.consumed(300))
        XCTAssertEqual(stream.targetChanged(to: 400), 300, "shrunk to 400: the window is 100, and the 300 consumed go back")
        XCTAssertEqual(stream.window, 400)
        XCTAssertNil(stream.targetChanged(to: 2000))
        XCTAssertEqual(stream.window, 2000)
    }
}
