import PorticoConfig
import XCTest

final class ConfigSizeTests: XCTestCase {
    func testAcceptedSpellings() {
        XCTAssertEqual(ConfigSize.parse("1048576"), 1_048_576)
        XCTAssertEqual(ConfigSize.parse("0"), 0)
        XCTAssertEqual(ConfigSize.parse("512B"), 512)
        XCTAssertEqual(ConfigSize.parse("64KB"), 64_000)
        XCTAssertEqual(ConfigSize.parse("2MB"), 2_000_000)
        XCTAssertEqual(ConfigSize.parse("1GB"), 1_000_000_000)
        XCTAssertEqual(ConfigSize.parse("60KiB"), 61_440)
        XCTAssertEqual(ConfigSize.parse("10MiB"), 10_485_760)
        XCTAssertEqual(ConfigSize.parse("2GiB"), 2_147_483_648)
        XCTAssertEqual(ConfigSize.parse("10 MiB"), 10_485_760)
    }

    func testRejectedSpellings() {
        for text in ["", "MiB", "-1", "1.5MiB", "10mb", "10Kb", "10kib", "10 megs", "10  MiB", "10MiB ", " 10",
                     "1TB", "0x10", "99999999999GiB", "9999999999999999999"] {
            XCTAssertNil(ConfigSize.parse(text), "'\(text)' should not be a size")
        }
    }

    func testFormatUsesTheLargestExactBinaryUnit() {
        XCTAssertEqual(ConfigSize.format(61_440), "60KiB")
        XCTAssertEqual(ConfigSize.format(10_485_760), "10MiB")
        XCTAssertEqual(ConfigSize.format(1_073_741_824), "1GiB")
        XCTAssertEqual(ConfigSize.format(1_000_000), "1000000B")
        XCTAssertEqual(ConfigSize.format(0), "0B")
        for bytes in [0, 1, 1023, 1024, 61_440, 1_000_000, 3 << 30] {
            XCTAssertEqual(ConfigSize.parse(ConfigSize.format(bytes)), bytes)
        }
    }
}
