import PorticoConfig
import XCTest

final class HostPortTests: XCTestCase {
    func testAcceptedAddresses() {
        XCTAssertEqual(HostPort.parse("127.0.0.1:8080"), HostPort(host: "127.0.0.1", port: 8080))
        XCTAssertEqual(HostPort.parse("localhost:80"), HostPort(host: "localhost", port: 80))
        XCTAssertEqual(HostPort.parse("[::1]:8443"), HostPort(host: "::1", port: 8443))
        XCTAssertEqual(HostPort.parse("api.internal:65535"), HostPort(host: "api.internal", port: 65535))
        XCTAssertEqual(HostPort.parse("0.0.0.0:1"), HostPort(host: "0.0.0.0", port: 1))
    }

    func testRejectedAddresses() {
        for text in ["", "localhost", ":8080", "127.0.0.1:", "127.0.0.1:0", "127.0.0.1:65536", "127.0.0.1:99999",
                     "127.0.0.1:-1", "127.0.0.1:+80", "127.0.0.1:80a", "::1:8080", "[::1]", "[]:80", "[127.0.0.1]:80",
                     "local host:80", "http://localhost:80", "127.0.0.1:080808"] {
            XCTAssertNil(HostPort.parse(text), "'\(text)' should not be an address")
        }
    }

    func testPortZeroOnlyWhenAllowed() {
        XCTAssertNil(HostPort.parse("127.0.0.1:0"))
        XCTAssertEqual(HostPort.parse("127.0.0.1:0", allowPortZero: true), HostPort(host: "127.0.0.1", port: 0))
        XCTAssertNil(HostPort.parse("127.0.0.1:65536", allowPortZero: true))
    }

    func testDescriptionParsesBack() {
        for text in ["127.0.0.1:8080", "[::1]:8443", "localhost:80"] {
            XCTAssertEqual(HostPort.parse(text)?.description, text)
        }
    }
}
