import PorticoRouting
import XCTest

final class ServerNameTableTests: XCTestCase {
    private let table = ServerNameTable([
        (names: ["db.example.com"], value: "db"),
        (names: ["*.internal.example", "x.internal.example"], value: "internal"),
        (names: ["api.internal.example"], value: "api"),
        (names: ["db.example.com"], value: "shadowed"),
    ])

    func testExactBeatsWildcardAndCaseDoesNotMatter() {
        XCTAssertEqual(table.lookup("db.example.com"), "db")
        XCTAssertEqual(table.lookup("DB.Example.COM."), "db", "case and one trailing dot are ignored")
        XCTAssertEqual(table.lookup("api.internal.example"), "api", "exact beats the wildcard whatever the order")
        XCTAssertEqual(table.lookup("other.internal.example"), "internal")
    }

    func testAWildcardIsOneLabel() {
        XCTAssertNil(table.lookup("internal.example"), "not the domain itself")
        XCTAssertNil(table.lookup("a.b.internal.example"), "not two labels")
        XCTAssertNil(table.lookup(".internal.example"), "not an empty label")
        XCTAssertNil(table.lookup("example.com"))
        XCTAssertNil(table.lookup(""))
    }
}
