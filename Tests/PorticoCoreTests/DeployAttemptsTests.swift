import PorticoCore
import XCTest

final class DeployAttemptsTests: XCTestCase {
    private let second: UInt64 = 1_000_000_000

    func testAFailedContentIsNotTriedAgainUntilItsBackoffHasPassed() {
        var attempts = DeployAttempts(initialBackoff: 60 * second, maxBackoff: 3600 * second)
        XCTAssertEqual(attempts.decide("f", fingerprint: "a", now: 0), .attempt)
        let failure = attempts.failed("f", fingerprint: "a", reason: "build failed", now: 0)
        XCTAssertEqual(failure.count, 1)
        XCTAssertEqual(failure.retryAt, 60 * second)
        // The registry polls every 2 s: every poll in the minute is a skip, not a build.
        for t in stride(from: 2 * second, to: 60 * second, by: Int(2 * second)) {
            XCTAssertEqual(attempts.decide("f", fingerprint: "a", now: t), .skip(failure))
        }
        XCTAssertEqual(attempts.decide("f", fingerprint: "a", now: 60 * second), .attempt)
    }

    func testTheBackoffDoublesForTheSameContentAndIsCapped() {
        var attempts = DeployAttempts(initialBackoff: 60 * second, maxBackoff: 240 * second)
        var now: UInt64 = 0
        var delays: [UInt64] = []
        for _ in 0..<5 {
            let failure = attempts.failed("f", fingerprint: "a", reason: "x", now: now)
            delays.append(failure.retryAt - now)
            now = failure.retryAt
        }
        XCTAssertEqual(delays, [60, 120, 240, 240, 240].map { $0 * second })
    }

    func testChangedContentIsTriedAtOnceAndStartsItsOwnCount() {
        var attempts = DeployAttempts()
        attempts.failed("f", fingerprint: "a", reason: "x", now: 0)
        attempts.failed("f", fingerprint: "a", reason: "x", now: 0)
        XCTAssertEqual(attempts.decide("f", fingerprint: "b", now: 1), .attempt, "a change of the folder is built at once")
        XCTAssertEqual(attempts.failed("f", fingerprint: "b", reason: "y", now: 1).count, 1)
        XCTAssertEqual(attempts.decide("g", fingerprint: "a", now: 1), .attempt, "other functions are unaffected")
    }

    func testForgetClearsTheFailure() {
        var attempts = DeployAttempts()
        attempts.failed("f", fingerprint: "a", reason: "x", now: 0)
        attempts.forget("f")
        XCTAssertEqual(attempts.decide("f", fingerprint: "a", now: 1), .attempt)
        XCTAssertNil(attempts.failures["f"])
    }
}
