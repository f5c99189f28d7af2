import NIOCore
import NIOEmbedded
@testable import PorticoProxy
import XCTest

final class WakeupTimerTests: XCTestCase {
    private var loop: EmbeddedEventLoop!
    private var timer: WakeupTimer!
    /// When (in seconds since the start) each wake-up came.
    private var wakes: [Int64] = []
    private var start: NIODeadline!

    override func setUp() {
        loop = EmbeddedEventLoop()
        start = loop.now
        wakes = []
        timer = WakeupTimer(loop: loop) { [unowned self] in
            wakes.append((loop.now - start).nanoseconds / 1_000_000_000)
        }
    }

    override func tearDown() {
        timer.stop()
        try? loop.syncShutdownGracefully()
    }

    func testWakesAtTheDeadline() {
        timer.wake(by: start + .seconds(10))
        loop.advanceTime(by: .seconds(9))
        XCTAssertEqual(wakes, [])
        loop.advanceTime(by: .seconds(1))
        XCTAssertEqual(wakes, [10])
        loop.advanceTime(by: .seconds(60))
        XCTAssertEqual(wakes, [10], "one deadline, one wake-up")
    }

    func testALaterDeadlineKeepsTheEarlierWakeUp() {
        timer.wake(by: start + .seconds(10))
        timer.wake(by: start + .seconds(25))
        loop.advanceTime(by: .seconds(30))
        XCTAssertEqual(wakes, [10], "the owner asks again for its later deadline when woken")
    }

    func testAnEarlierDeadlineMovesTheWakeUp() {
        timer.wake(by: start + .seconds(10))
        timer.wake(by: start + .seconds(3))
        loop.advanceTime(by: .seconds(30))
        XCTAssertEqual(wakes, [3])
    }

    func testAskingAgainAfterAWakeUpSchedulesAnother() {
        timer.wake(by: start + .seconds(5))
        loop.advanceTime(by: .seconds(5))
        timer.wake(by: start + .seconds(12))
        loop.advanceTime(by: .seconds(10))
        XCTAssertEqual(wakes, [5, 12])
    }

    func testStopCancelsTheWakeUp() {
        timer.wake(by: start + .seconds(5))
        timer.stop()
        loop.advanceTime(by: .seconds(10))
        XCTAssertEqual(wakes, [])
    }
}

private final class Watched: DeadlineWatched {
    let name: String
    var deadline: NIODeadline?
    var watchSlot = -1
    var onPassed: (String) -> Void

    init(_ name: String, onPassed: @escaping (String) -> Void) {
        self.name = name
        self.onPassed = onPassed
    }

    func deadlinePassed() { onPassed(name) }
}

final class DeadlineSweeperTests: XCTestCase {
    private var loop: EmbeddedEventLoop!
    private var sweeper: DeadlineSweeper<Watched>!
    private var passed: [String] = []

    override func setUp() {
        loop = EmbeddedEventLoop()
        sweeper = DeadlineSweeper(loop: loop)
        passed = []
    }

    override func tearDown() {
        try? loop.syncShutdownGracefully()
    }

    private func member(_ name: String) -> Watched {
        Watched(name) { [unowned self] in passed.append($0) }
    }

    func testEachMemberTimesOutAtItsOwnDeadline() {
        let a = member("a"), b = member("b"), c = member("c")
        sweeper.watch(a, until: loop.now + .seconds(10))
        sweeper.watch(b, until: loop.now + .seconds(5))
        sweeper.watch(c, until: loop.now + .seconds(20))
        loop.advanceTime(by: .seconds(5))
        XCTAssertEqual(passed, ["b"])
        loop.advanceTime(by: .seconds(5))
        XCTAssertEqual(passed, ["b", "a"])
        loop.advanceTime(by: .seconds(9))
        XCTAssertEqual(passed, ["b", "a"])
        loop.advanceTime(by: .seconds(1))
        XCTAssertEqual(passed, ["b", "a", "c"])
        XCTAssertEqual(sweeper.watchedCount, 0)
        XCTAssertNil(a.deadline)
        XCTAssertEqual(a.watchSlot, -1)
    }

    func testAnUnwatchedMemberNeverTimesOut() {
        let a = member("a"), b = member("b"), c = member("c")
        sweeper.watch(a, until: loop.now + .seconds(5))
        sweeper.watch(b, until: loop.now + .seconds(5))
        sweeper.watch(c, until: loop.now + .seconds(5))
        sweeper.unwatch(a)  // the first: the last member moves into its place
        sweeper.unwatch(a)  // twice is harmless
        XCTAssertEqual(sweeper.watchedCount, 2)
        loop.advanceTime(by: .seconds(6))
        XCTAssertEqual(passed.sorted(), ["b", "c"])
    }

    func testMembersWatchedLaterStillTimeOutAfterTheEarlierOnesEnd() {
        // Keep-alive traffic: each request ends well before its timeout, and a new one starts.
        for second in 0..<30 {
            let request = member("r\(second)")
            sweeper.watch(request, until: loop.now + .seconds(10))
            loop.advanceTime(by: .seconds(1))
            if second < 29 { sweeper.unwatch(request) }
        }
        XCTAssertEqual(passed, [], "every request but the last ended in time")
        loop.advanceTime(by: .seconds(9))
        XCTAssertEqual(passed, ["r29"])
    }

    func testAMemberEndedByAnEarlierOnesTimeoutIsNotTimedOut() {
        let b = member("b")
        let a = Watched("a") { [unowned self] name in
            passed.append(name)
            sweeper.unwatch(b)
        }
        sweeper.watch(a, until: loop.now + .seconds(5))
        sweeper.watch(b, until: loop.now + .seconds(5))
        loop.advanceTime(by: .seconds(6))
        XCTAssertEqual(passed, ["a"])
    }

    func testAWatchCanBeMovedToALaterDeadline() {
        let a = member("a")
        sweeper.watch(a, until: loop.now + .seconds(5))
        sweeper.watch(a, until: loop.now + .seconds(8))
        XCTAssertEqual(sweeper.watchedCount, 1)
        loop.advanceTime(by: .seconds(7))
        XCTAssertEqual(passed, [])
        loop.advanceTime(by: .seconds(1))
        XCTAssertEqual(passed, ["a"])
    }
}
