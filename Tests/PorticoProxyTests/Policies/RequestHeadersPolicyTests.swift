import PorticoConfig
import PorticoHTTP1
@testable import PorticoProxy
import XCTest

/// `requestHeaders` on the request head a backend receives: set, add and remove, by name in
/// any case, on the fields a client sent and on those Portico added.
final class RequestHeadersPolicyTests: XCTestCase {
    private func policy(set: [(String, String)] = [], add: [(String, String)] = [], remove: [String] = []) -> RequestHeadersPolicy {
        RequestHeadersPolicy(HeaderModifierConfig(set: set.map { .init(name: $0.0, value: $0.1) },
                                                  add: add.map { .init(name: $0.0, value: $0.1) }, remove: remove))
    }

    private func fields(_ headers: HTTPFieldList) -> [String] {
        headers.pairs.map { "\($0.name.lowercased()): \($0.value)" }
    }

    func testTheIssuesExampleSetsAddsAndRemoves() {
        var headers = HTTPFieldList([("Host", "api"), ("X-Env", "dev"), ("x-env", "staging"), ("X-Tag", "client"),
                                   ("X-Debug", "1"), ("x-debug", "2"), ("Accept", "*/*")])
        policy(set: [("x-env", "prod")], add: [("x-tag", "a")], remove: ["x-debug"]).apply(to: &headers)
        XCTAssertEqual(fields(headers), ["host: api", "x-tag: client", "accept: */*", "x-env: prod", "x-tag: a"],
                       "every x-env field replaced by one, x-tag kept and one more added, every x-debug gone")
    }

    func testSetAddsAHeaderThatIsNotThereAndRemoveOfAnAbsentOneChangesNothing() {
        var headers = HTTPFieldList([("host", "api")])
        policy(set: [("x-env", "prod")], remove: ["x-missing"]).apply(to: &headers)
        XCTAssertEqual(fields(headers), ["host: api", "x-env: prod"])
    }

    func testEditsReplaceWhatPorticoAddedBeforeThem() {
        // The upstream head as Portico builds it: the policy runs after the forwarding headers.
        var headers = HTTPFieldList([("host", "api"), ("x-forwarded-for", "10.0.0.1"), ("x-request-id", "abc"),
                                   ("forwarded", "for=10.0.0.1")])
        policy(set: [("x-request-id", "fixed")], remove: ["x-forwarded-for", "forwarded"]).apply(to: &headers)
        XCTAssertEqual(fields(headers), ["host: api", "x-request-id: fixed"])
    }

    func testAnEmptyPolicyLeavesTheHeadersAsTheyWere() {
        var headers = HTTPFieldList([("host", "api"), ("x-a", "1")])
        policy().apply(to: &headers)
        XCTAssertEqual(fields(headers), ["host: api", "x-a: 1"])
    }
}
