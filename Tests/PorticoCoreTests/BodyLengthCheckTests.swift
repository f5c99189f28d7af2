import PorticoCore
import XCTest

/// `BodyLengthCheck` event by event: DATA counted against a declared `content-length`.
final class BodyLengthCheckTests: XCTestCase {
    func testABodyOfTheDeclaredLengthPassesInAnyPieces() {
        var check = BodyLengthCheck(declared: 10)
        XCTAssertTrue(check.count(3, ending: false))
        XCTAssertTrue(check.count(0, ending: false))
        XCTAssertTrue(check.count(7, ending: true))
    }

    func testABodyThatRunsPastTheLengthFailsAtTheBytesThatDo() {
        var check = BodyLengthCheck(declared: 4)
        XCTAssertTrue(check.count(4, ending: false))
        XCTAssertFalse(check.count(1, ending: false))
    }

    func testABodyThatEndsShortFailsAtItsEnd() {
        var check = BodyLengthCheck(declared: 4)
        XCTAssertTrue(check.count(3, ending: false))
        XCTAssertFalse(check.count(0, ending: true), "trailers or an empty DATA frame end it short")
        var none = BodyLengthCheck(declared: 5)
        XCTAssertFalse(none.count(0, ending: true), "a HEADERS frame that ends the stream")
    }

    func testAFailedCountLeavesWhatWasDueSoTheSameBytesFailAgain() {
        var check = BodyLengthCheck(declared: 2)
        XCTAssertFalse(check.count(3, ending: true))
        XCTAssertEqual(check, BodyLengthCheck(declared: 2))
        XCTAssertTrue(check.count(2, ending: true))
    }

    func testWithoutALengthAnythingGoes() {
        var check = BodyLengthCheck(declared: nil)
        XCTAssertTrue(check.count(1 << 20, ending: false))
        XCTAssertTrue(check.count(0, ending: true))
    }

    /// A HEAD's answer, or a 304, is declared as zero whatever its field says.
    func testZeroAllowsOnlyAnEmptyBody() {
        var check = BodyLengthCheck(declared: 0)
        XCTAssertTrue(check.count(0, ending: true))
        var data = BodyLengthCheck(declared: 0)
        XCTAssertFalse(data.count(1, ending: true))
    }
}
