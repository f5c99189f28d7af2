import NIOCore
import PorticoHTTP1
import XCTest

/// The protocol-neutral field list: lookups by lowercase name, lists built from pairs (as
/// HTTP/2 will), edits and serialization.
final class HTTPFieldListTests: XCTestCase {
    private func parsedFields(_ fields: String) -> HTTPFieldList {
        var parser = HTTP1RequestParser()
        parser.feed(ByteBuffer(string: "GET / HTTP/1.1\r\n\(fields)\r\n"))
        guard case .head(let head) = parser.next() else {
            XCTFail("no head")
            return HTTPFieldList()
        }
        return head.fields
    }

    func testNamesAreComparedIgnoringCase() {
        let fields = self.parsedFields("Content-TYPE: text/html\r\nX-Caret^: 1\r\nx-caret~: 2\r\n")
        XCTAssertTrue(fields.contains("content-type"))
        XCTAssertEqual(fields.firstIndex(of: "content-type"), 0)
        XCTAssertFalse(fields.contains("content-typ"))
        XCTAssertTrue(fields[0].hasName("content-type"))
        // Only letters fold: `^` and `~` differ by the case bit but are different names.
        XCTAssertEqual(fields.firstValue(of: "x-caret^"), "1")
        XCTAssertEqual(fields.firstValue(of: "x-caret~"), "2")
    }

    func testValuesAndCounts() {
        let fields = self.parsedFields("Accept: a\r\nX: 1\r\naccept: b\r\nConnection: Keep-Alive , Upgrade\r\n")
        XCTAssertEqual(fields.count, 4)
        XCTAssertEqual(fields.count(of: "accept"), 2)
        XCTAssertEqual(fields.values(of: "accept"), ["a", "b"])
        XCTAssertNil(fields.firstValue(of: "missing"))
        XCTAssertTrue(fields.containsToken("upgrade", inFieldNamed: "connection"))
        XCTAssertTrue(fields.containsToken("keep-alive", inFieldNamed: "connection"))
        XCTAssertFalse(fields.containsToken("close", inFieldNamed: "connection"))
        XCTAssertTrue(fields[1].valueEqualsIgnoringCase("1"))
    }

    func testAListBuiltFromPairsEqualsTheParsedOne() {
        let parsed = self.parsedFields("host: a.example\r\nx-trace: 7\r\n")
        let built = HTTPFieldList([("host", "a.example"), ("x-trace", "7")])
        XCTAssertEqual(parsed, built)
        XCTAssertEqual(built.firstValue(of: "x-trace"), "7")
        XCTAssertEqual(built.pairs.map(\.name), ["host", "x-trace"])
    }

    func testEditsAndSerialization() {
        var fields = self.parsedFields("Host: a\r\nX-Remove: 1\r\nAccept: */*\r\nx-remove: 2\r\n")
        fields.removeAll(named: "x-remove")
        fields.append(name: "X-Added", value: "yes")
        var out = ByteBuffer()
        fields.write(to: &out)
        XCTAssertEqual(String(buffer: out), "Host: a\r\nAccept: */*\r\nX-Added: yes\r\n")
    }

    func testValidationOfAppendedFields() {
        XCTAssertTrue(HTTPFieldList.isValidName(Array("x-ok".utf8)))
        XCTAssertFalse(HTTPFieldList.isValidName(Array("x ok".utf8)))
        XCTAssertFalse(HTTPFieldList.isValidName([UInt8]()))
        XCTAssertTrue(HTTPFieldList.isValidValue(Array("a b".utf8)))
        XCTAssertTrue(HTTPFieldList.isValidValue([UInt8]()))
        XCTAssertFalse(HTTPFieldList.isValidValue(Array("a\r\nb".utf8)))
        XCTAssertFalse(HTTPFieldList.isValidValue(Array("a\u{0}".utf8)))
        XCTAssertFalse(HTTPFieldList.isValidValue(Array(" a".utf8)))
    }

    /// A list can be written on HTTP/1 lines unless an appended field has a name that is not a
    /// token or a control byte (CR, LF, NUL...) in its value; a parsed list always can.
    func testSendabilityFollowsWhatWasAppended() {
        var fields = self.parsedFields("Host: a\r\nX-Obs: caf\u{E9}\r\n")
        XCTAssertTrue(fields.isSendable)
        fields.append(name: "x-ok", value: "tab\tand obs-text \u{E9}")
        XCTAssertTrue(fields.isSendable)
        for (name, value) in [("x-bad", "a\r\nx-injected: 1"), ("x-bad", "nul\u{0}"), ("x-bad", "bell\u{7}"),
                              ("x bad", "v"), ("x-bad:", "v"), ("", "v")] {
            var list = fields
            list.append(name: name, value: value)
            XCTAssertFalse(list.isSendable, "\(name): \(value)")
            // Removing the field makes the list sendable again.
            list.removeAll(named: name)
            XCTAssertTrue(list.isSendable, "\(name) removed")
        }
        var built = HTTPFieldList([("x-a", "1")])
        XCTAssertTrue(built.isSendable)
        built.append(name: "x-b", value: "2\r\n")
        XCTAssertFalse(built.isSendable)
    }
}
