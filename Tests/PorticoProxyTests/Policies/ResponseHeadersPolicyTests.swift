import PorticoConfig
import PorticoHTTP1
@testable import PorticoProxy
import XCTest

/// `responseHeaders` on a backend's answer: the fields a client sees.
final class ResponseHeadersPolicyTests: XCTestCase {
    private func fields(_ headers: HTTPFieldList) -> [String] {
        headers.pairs.map { "\($0.name.lowercased()): \($0.value)" }
    }

    func testSetAddAndRemoveOnAnAnswer() {
        let policy = ResponseHeadersPolicy(HeaderModifierConfig(
            set: [.init(name: "cache-control", value: "no-store")],
            add: [.init(name: "set-cookie", value: "b=2")],
            remove: ["server"]))
        var headers = HTTPFieldList([("Server", "python/3"), ("Cache-Control", "max-age=60"), ("Set-Cookie", "a=1"),
                                   ("content-length", "5")])
        policy.apply(to: &headers)
        XCTAssertEqual(fields(headers), ["set-cookie: a=1", "content-length: 5", "cache-control: no-store", "set-cookie: b=2"],
                       "a cookie is added as its own field, never joined to another with a comma")
    }

    func testEditsApplyInTheOrderRemoveSetAdd() {
        let edits = HeaderEdits(HeaderModifierConfig(set: [.init(name: "b", value: "2")], add: [.init(name: "c", value: "3")],
                                                     remove: ["a"])).edits
        let order = edits.map { edit -> String in
            switch edit {
            case .remove(let name): return "remove \(name)"
            case .set(let name, let value): return "set \(name)=\(value)"
            case .add(let name, let value): return "add \(name)=\(value)"
            }
        }
        XCTAssertEqual(order, ["remove a", "set b=2", "add c=3"])
    }
}
