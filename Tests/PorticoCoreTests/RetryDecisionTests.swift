import PorticoCore
import XCTest

final class RetryRulesTests: XCTestCase {
    func testConditionsFollowEnvoysRetryOn() {
        let fiveXX = RetryRules(retries: 2, conditions: .serverError)
        XCTAssertTrue(fiveXX.matches(.status(500)))
        XCTAssertTrue(fiveXX.matches(.status(503)))
        XCTAssertFalse(fiveXX.matches(.status(409)))
        XCTAssertFalse(fiveXX.matches(.status(200)))
        XCTAssertTrue(fiveXX.matches(.connectFailure), "5xx covers no answer at all")
        XCTAssertTrue(fiveXX.matches(.reset))
        XCTAssertTrue(fiveXX.matches(.perTryTimeout))

        let gateway = RetryRules(retries: 2, conditions: .gatewayError)
        XCTAssertTrue(gateway.matches(.status(502)))
        XCTAssertTrue(gateway.matches(.status(504)))
        XCTAssertFalse(gateway.matches(.status(500)))
        XCTAssertTrue(gateway.matches(.connectFailure), "as in Envoy, gateway-error covers no answer")
        XCTAssertTrue(gateway.matches(.perTryTimeout))

        let connect = RetryRules(retries: 2, conditions: .connectFailure)
        XCTAssertTrue(connect.matches(.connectFailure))
        XCTAssertFalse(connect.matches(.reset))
        XCTAssertFalse(connect.matches(.status(503)))

        let reset = RetryRules(retries: 2, conditions: [.reset, .retriable4xx])
        XCTAssertTrue(reset.matches(.reset))
        XCTAssertTrue(reset.matches(.perTryTimeout))
        XCTAssertTrue(reset.matches(.status(409)))
        XCTAssertFalse(reset.matches(.connectFailure))
    }

    func testBackoffIsFullJitterExponentialAndCapped() {
        let rules = RetryRules(retries: 5, conditions: .serverError)
        XCTAssertEqual(rules.backoff(retry: 1, unit: 0.999_999), 24_999_975)
        XCTAssertEqual(rules.backoff(retry: 2, unit: 0.5), 25_000_000)
        XCTAssertEqual(rules.backoff(retry: 3, unit: 1), 100_000_000)
        XCTAssertEqual(rules.backoff(retry: 5, unit: 1), 250_000_000, "capped at 250 ms")
        XCTAssertEqual(rules.backoff(retry: 200, unit: 1), 250_000_000, "no overflow")
        XCTAssertEqual(rules.backoff(retry: 1, unit: 0), 0)
    }
}

final class RetryBudgetTests: XCTestCase {
    private let second: Int64 = 1_000_000_000

    func testRetriesAreCappedAtAShareOfRequestsWithAMinimum() {
        var budget = RetryBudget(percent: 20, minimum: 3, windowNanoseconds: 10 * second, now: 0)
        for _ in 0..<10 { budget.recordRequest(now: 0) }
        // 20 % of 10 is 2, but 3 are always allowed.
        XCTAssertEqual((0..<5).filter { _ in budget.takeRetry(now: 0) }.count, 3)

        for _ in 0..<90 { budget.recordRequest(now: second) }
        // 100 requests: 20 retries in all, 3 already spent.
        XCTAssertEqual((0..<50).filter { _ in budget.takeRetry(now: second) }.count, 17)
    }

    func testTheWindowMovesOn() {
        var budget = RetryBudget(percent: 20, minimum: 0, windowNanoseconds: 10 * second, now: 0)
        for _ in 0..<100 { budget.recordRequest(now: 0) }
        XCTAssertEqual((0..<50).filter { _ in budget.takeRetry(now: 0) }.count, 20)
        XCTAssertFalse(budget.takeRetry(now: 9 * second), "still inside the window")
        // Eleven seconds on, the old requests and retries have left the window.
        XCTAssertFalse(budget.takeRetry(now: 11 * second), "no requests, no minimum: no retries")
        for _ in 0..<10 { budget.recordRequest(now: 11 * second) }
        XCTAssertTrue(budget.takeRetry(now: 11 * second))
        XCTAssertTrue(budget.takeRetry(now: 11 * second))
        XCTAssertFalse(budget.takeRetry(now: 11 * second))
    }
}
