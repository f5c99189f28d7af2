import PorticoCore
import XCTest

/// Envoy's premature-reset rule: more than half of at least 500 streams reset by the client
/// within a second of opening closes the connection.
final class PrematureResetBudgetTests: XCTestCase {
    private let second: UInt64 = 1_000_000_000

    func testARapidResetFloodClosesTheConnectionOnceEnoughStreamsWereSeen() {
        var budget = PrematureResetBudget()
        for index in 1...500 {
            budget.streamOpened()
            let verdict = budget.clientReset(openedAt: UInt64(index) * 1000, now: UInt64(index) * 1000 + 10)
            XCTAssertEqual(verdict, index < 500 ? .fine : .closeConnection, "stream \(index)")
        }
    }

    func testResetsAfterTheMinimumLifetimeAreNotPremature() {
        var budget = PrematureResetBudget()
        for _ in 0..<1000 {
            budget.streamOpened()
            XCTAssertEqual(budget.clientReset(openedAt: 0, now: second), .fine, "a stream that lived a second did work")
        }
        XCTAssertEqual(budget.prematureResets, 0)
    }

    func testABrowserThatCancelsSomeRequestsIsFine() {
        var budget = PrematureResetBudget()
        for index in 0..<2000 {
            budget.streamOpened()
            // A quarter of its requests cancelled early (navigations, aborted fetches).
            if index % 4 == 0 { XCTAssertEqual(budget.clientReset(openedAt: 0, now: 1), .fine) }
        }
    }

    func testHalfExactlyIsNotMoreThanHalf() {
        var budget = PrematureResetBudget(configuration: .init(minStreamLifetimeNanoseconds: second, totalStreamCount: 4))
        for _ in 0..<4 { budget.streamOpened() }
        XCTAssertEqual(budget.clientReset(openedAt: 0, now: 1), .fine)
        XCTAssertEqual(budget.clientReset(openedAt: 0, now: 1), .fine, "2 of 4")
        XCTAssertEqual(budget.clientReset(openedAt: 0, now: 1), .closeConnection, "3 of 4")
    }
}
