import PorticoCore
import XCTest

final class TokenBucketTests: XCTestCase {
    private let second: Int64 = 1_000_000_000

    func testBurstIsAllowedThenLimitedWithTheWaitForOneToken() {
        // 10 per second, at most 3 at once.
        var bucket = TokenBucket(capacity: 3, refillTokens: 10, refillIntervalNanoseconds: second, now: 0)
        XCTAssertEqual(bucket.take(now: 0), .allowed)
        XCTAssertEqual(bucket.take(now: 0), .allowed)
        XCTAssertEqual(bucket.take(now: 0), .allowed)
        XCTAssertEqual(bucket.take(now: 0), .limited(retryAfterNanoseconds: second / 10))
        // Half of a token's time later, half of the wait is left.
        XCTAssertEqual(bucket.take(now: second / 20), .limited(retryAfterNanoseconds: second / 20))
        XCTAssertEqual(bucket.take(now: second / 10), .allowed)
        XCTAssertEqual(bucket.take(now: second / 10), .limited(retryAfterNanoseconds: second / 10))
    }

    func testRefillNeverExceedsCapacity() {
        var bucket = TokenBucket(capacity: 2, refillTokens: 1, refillIntervalNanoseconds: second, now: 0)
        XCTAssertEqual(bucket.take(now: 0), .allowed)
        XCTAssertFalse(bucket.isFull(now: 0))
        XCTAssertEqual(bucket.available(now: 100 * second), 2)
        XCTAssertTrue(bucket.isFull(now: 100 * second))
        XCTAssertEqual(bucket.take(now: 100 * second), .allowed)
        XCTAssertEqual(bucket.take(now: 100 * second), .allowed)
        XCTAssertEqual(bucket.take(now: 100 * second), .limited(retryAfterNanoseconds: second))
    }

    func testSustainedRateMatchesTheConfiguredRate() {
        // 100 per second with a burst of 1: over 10 simulated seconds of a request every
        // millisecond, 100 per second get through (plus the first token).
        var bucket = TokenBucket(capacity: 1, refillTokens: 100, refillIntervalNanoseconds: second, now: 0)
        var allowed = 0
        for millisecond in 0..<10_000 where bucket.take(now: Int64(millisecond) * 1_000_000) == .allowed {
            allowed += 1
        }
        XCTAssertEqual(allowed, 1_000, accuracy: 1)
    }

    func testClockGoingBackwardsAddsNothing() {
        var bucket = TokenBucket(capacity: 1, refillTokens: 1, refillIntervalNanoseconds: second, now: 10 * second)
        XCTAssertEqual(bucket.take(now: 10 * second), .allowed)
        XCTAssertEqual(bucket.take(now: 5 * second), .limited(retryAfterNanoseconds: second))
    }

    func testLargeValuesKeepTheirBurstAndRate() {
        // A billion a day: the whole burst is there, and one token comes back every 86.4 µs.
        let day = 86_400 * second
        var bucket = TokenBucket(capacity: 1_000_000_000, refillTokens: 1_000_000_000, refillIntervalNanoseconds: day, now: 0)
        XCTAssertEqual(bucket.available(now: 0), 1_000_000_000)
        XCTAssertEqual(bucket.take(now: 0), .allowed)
        XCTAssertEqual(bucket.available(now: 0), 999_999_999)
        XCTAssertTrue(bucket.isFull(now: 86_400))

        // One a day: the wait for the next token is the whole day, and nothing overflows.
        var slow = TokenBucket(capacity: 1, refillTokens: 1, refillIntervalNanoseconds: day, now: 0)
        XCTAssertEqual(slow.take(now: 0), .allowed)
        XCTAssertEqual(slow.take(now: 0), .limited(retryAfterNanoseconds: day))
        XCTAssertEqual(slow.take(now: .max / 2), .allowed)
    }
}
