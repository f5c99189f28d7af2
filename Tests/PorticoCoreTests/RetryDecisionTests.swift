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

    /// The defaults at low traffic: one dead endpoint of two, each request retried once, ten
    /// requests a second. The floor of 10 a second covers every retry; the old floor (3 per
    /// 10 s, the larger of floor and share) refused all but three.
    func testAQuietServiceGetsEveryRetry() {
        var budget = RetryBudget(percent: 20, minimumPerSecond: 10, windowNanoseconds: 10 * second, now: 0)
        var refused = 0
        for tick in 0..<100 {
            let now = Int64(tick) * second / 10
            budget.recordRequest(now: now)
            if !budget.takeRetry(now: now) { refused += 1 }
        }
        XCTAssertEqual(refused, 0)
    }

    func testTheFloorIsAddedToTheShare() {
        var budget = RetryBudget(percent: 20, minimumPerSecond: 1, minimum: 2, windowNanoseconds: 10 * second, now: 0)
        XCTAssertEqual(budget.floor, 12, "1 a second over 10 s, and 2 more")
        // No requests at all: the floor alone.
        XCTAssertEqual((0..<50).filter { _ in budget.takeRetry(now: 0) }.count, 12)
        // 100 requests: 20 % of them on top of the floor, 12 already spent.
        for _ in 0..<100 { budget.recordRequest(now: second) }
        XCTAssertEqual((0..<50).filter { _ in budget.takeRetry(now: second) }.count, 20)
    }

    /// A busy service whose every request fails: retries stop at the share plus the floor,
    /// so they cannot multiply the load by the route's `attempts`.
    func testTheBudgetBitesWhenRetriesAreALargeShareOfBusyTraffic() {
        var budget = RetryBudget(percent: 20, minimumPerSecond: 10, windowNanoseconds: 10 * second, now: 0)
        var retries = 0
        // 1,000 requests a second for 10 s, each asking for 3 retries.
        for tick in 0..<10_000 {
            let now = Int64(tick) * second / 1000
            budget.recordRequest(now: now)
            for _ in 0..<3 where budget.takeRetry(now: now) { retries += 1 }
        }
        // At most 20 % of 10,000 plus 100: far from the 30,000 asked for.
        XCTAssertLessThanOrEqual(retries, 2_100)
        XCTAssertGreaterThan(retries, 1_900)
    }

    func testTheWindowMovesOn() {
        var budget = RetryBudget(percent: 20, minimumPerSecond: 0, windowNanoseconds: 10 * second, now: 0)
        for _ in 0..<100 { budget.recordRequest(now: 0) }
        XCTAssertEqual((0..<50).filter { _ in budget.takeRetry(now: 0) }.count, 20)
        XCTAssertFalse(budget.takeRetry(now: 9 * second), "still inside the window")
        // Eleven seconds on, the old requests and retries have left the window.
        XCTAssertFalse(budget.takeRetry(now: 11 * second), "no requests, no floor: no retries")
        for _ in 0..<10 { budget.recordRequest(now: 11 * second) }
        XCTAssertTrue(budget.takeRetry(now: 11 * second))
        XCTAssertTrue(budget.takeRetry(now: 11 * second))
        XCTAssertFalse(budget.takeRetry(now: 11 * second))
    }

    func testTheFloorScalesWithTheWindowWithoutOverflow() {
        XCTAssertEqual(RetryBudget(percent: 20, minimumPerSecond: 10, windowNanoseconds: second / 2, now: 0).floor, 5)
        XCTAssertEqual(RetryBudget(percent: 20, minimumPerSecond: 10, windowNanoseconds: 60 * second, now: 0).floor, 600)
        let huge = RetryBudget(percent: 20, minimumPerSecond: 1_000_000, windowNanoseconds: 86_400 * second, now: 0)
        XCTAssertEqual(huge.floor, Int(Int32.max))
    }
}
