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
