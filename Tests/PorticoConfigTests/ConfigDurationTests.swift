import PorticoConfig
import XCTest

final class ConfigDurationTests: XCTestCase {
    func testAcceptedSpellings() {
        XCTAssertEqual(ConfigDuration.parse("250ms"), .milliseconds(250))
        XCTAssertEqual(ConfigDuration.parse("2s"), .seconds(2))
        XCTAssertEqual(ConfigDuration.parse("1m"), .seconds(60))
        XCTAssertEqual(ConfigDuration.parse("1h"), .seconds(3600))
        XCTAssertEqual(ConfigDuration.parse("1m30s"), .seconds(90))
        XCTAssertEqual(ConfigDuration.parse("1h2m3s4ms"), .milliseconds(3_723_004))
        XCTAssertEqual(ConfigDuration.parse("0s"), .seconds(0))
        XCTAssertEqual(ConfigDuration.parse("1500ms"), .milliseconds(1500))
    }

    func testRejectedSpellings() {
        for text in ["", "10", "0", "1.5s", "-1s", "s", "5 s", " 5s", "5s ", "5sec", "5S", "1ns", "10us",
                     "30s1m", "1s1s", "1ms1s", "1m30", "99999999999999999999h", "9999999999h"] {
            XCTAssertNil(ConfigDuration.parse(text), "'\(text)' should not be a duration")
        }
    }

    func testDescriptionParsesBack() {
        for duration in [ConfigDuration.seconds(15), .milliseconds(250), .seconds(0), .seconds(90)] {
            XCTAssertEqual(ConfigDuration.parse(duration.description), duration)
        }
    }
}
