import Foundation
@testable import PorticoConfig
import XCTest

/// A route's `requestHeaders` and `responseHeaders`: what they accept, and each way they refuse
/// a config, with file, line and key.
final class HeaderModifierConfigTests: XCTestCase {
    private func route(_ keys: String, action: String = "service: api") -> String {
        """
        listeners:
          - address: 127.0.0.1:8080
        services:
          api: { endpoints: [127.0.0.1:9001] }
        routes:
          - match: { prefix: / }
            \(action)
        \(keys.split(separator: "\n", omittingEmptySubsequences: false).map { "    " + $0 }.joined(separator: "\n"))
        """
    }

    func testTheIssuesExampleReadsAsWrittenWithNamesLowerCased() throws {
        let config = try ConfigLoader.parse(yaml: route("""
            requestHeaders:
              set: { X-Env: prod, x-count: 3, x-flag: true }
              add: { x-tag: a }
              remove: [X-Debug]
            responseHeaders:
              set: { cache-control: no-store }
              remove: [server]
            """), file: "gateway.yaml")
        XCTAssertEqual(config.routes[0].requestHeaders, HeaderModifierConfig(
            set: [.init(name: "x-env", value: "prod"), .init(name: "x-count", value: "3"), .init(name: "x-flag", value: "true")],
            add: [.init(name: "x-tag", value: "a")],
            remove: ["x-debug"]))
        XCTAssertEqual(config.routes[0].responseHeaders, HeaderModifierConfig(
            set: [.init(name: "cache-control", value: "no-store")], remove: ["server"]))
    }

    func testAFunctionRouteAndASplitTakeThemToo() throws {
        for action in ["function: hello", "split: [{ service: api, weight: 1 }, { function: hello, weight: 1 }]"] {
            let config = try ConfigLoader.parse(yaml: route("requestHeaders: { add: { x-a: b } }", action: action),
                                                file: "gateway.yaml")
            XCTAssertEqual(config.routes[0].requestHeaders?.add, [.init(name: "x-a", value: "b")], action)
        }
    }

    func testUnknownKeysSuggestTheClosest() {
        XCTAssertEqual(rejectionText(route("requestHeader: { set: { x-a: b } }")),
                       "gateway.yaml:8:5: routes[0].requestHeader: unknown key 'requestHeader' (did you mean 'requestHeaders'?)")
        XCTAssertEqual(rejectionText(route("responseHeaders: { sett: { x-a: b } }")),
                       "gateway.yaml:8:24: routes[0].responseHeaders.sett: unknown key 'sett' (did you mean 'set'?)")
    }

    func testFramingHopByHopHostAndPseudoHeadersAreRefusedWithTheReason() {
        let text = rejectionText(route("""
            requestHeaders:
              set: { Host: other, content-length: "0" }
              add: { Transfer-Encoding: chunked, expect: 100-continue }
              remove: [connection, ":path", upgrade]
            responseHeaders:
              set: { keep-alive: "timeout=5", host: fine-here }
              remove: [te]
            """))
        XCTAssertEqual(text.split(separator: "\n").map(String.init), [
            "gateway.yaml:9:14: routes[0].requestHeaders.set.Host: 'host' cannot be edited: routing and the backend read it; change it with the route's 'rewrite: { host: ... }'",
            "gateway.yaml:9:27: routes[0].requestHeaders.set.content-length: 'content-length' cannot be edited: it frames the message's body, and Portico frames each message itself",
            "gateway.yaml:10:14: routes[0].requestHeaders.add.Transfer-Encoding: 'transfer-encoding' cannot be edited: it frames the message's body, and Portico frames each message itself",
            "gateway.yaml:10:42: routes[0].requestHeaders.add.expect: 'expect' cannot be edited: Portico answers '100-continue' itself, and the backend must not answer it again",
            "gateway.yaml:11:16: routes[0].requestHeaders.remove[0]: 'connection' cannot be edited: it is hop-by-hop: it describes one connection, and Portico sets or removes it on each",
            "gateway.yaml:11:28: routes[0].requestHeaders.remove[1]: ':path' is an HTTP/2 pseudo-header; Portico sets those itself and they cannot be edited",
            "gateway.yaml:11:37: routes[0].requestHeaders.remove[2]: 'upgrade' cannot be edited: it is hop-by-hop: it describes one connection, and Portico sets or removes it on each",
            "gateway.yaml:13:14: routes[0].responseHeaders.set.keep-alive: 'keep-alive' cannot be edited: it is hop-by-hop: it describes one connection, and Portico sets or removes it on each",
            "gateway.yaml:14:16: routes[0].responseHeaders.remove[0]: 'te' cannot be edited: it is hop-by-hop: it describes one connection, and Portico sets or removes it on each",
        ], text)
    }

    func testNamesMustBeTokensAndValuesMayHoldNoControlCharacters() {
        let text = rejectionText(route("""
            requestHeaders:
              set: { "x a": b, "x-cr": "a\\rb", "x-lf": "a\\nInjected: 1", "x-nul": "a\\0b", "x-space": " a" }
              add: { "x-ok": "tab\\tinside and UTF-8 é", "x-bell": "\\a" }
              remove: ["x(y)", ""]
            """))
        XCTAssertEqual(text.split(separator: "\n").map(String.init), [
            "gateway.yaml:9:14: routes[0].requestHeaders.set.x a: expected a header name such as x-env (letters, digits and !#$%&'*+-.^_`|~), got 'x a'",
            "gateway.yaml:9:32: routes[0].requestHeaders.set.x-cr: a header value may not hold a carriage return (CR)",
            "gateway.yaml:9:48: routes[0].requestHeaders.set.x-lf: a header value may not hold a line feed (LF)",
            "gateway.yaml:9:75: routes[0].requestHeaders.set.x-nul: a header value may not hold a NUL byte",
            "gateway.yaml:9:94: routes[0].requestHeaders.set.x-space: a header value may not start or end with whitespace, got ' a'",
            "gateway.yaml:10:59: routes[0].requestHeaders.add.x-bell: a header value may not hold a control character",
            "gateway.yaml:11:16: routes[0].requestHeaders.remove[0]: expected a header name such as x-env (letters, digits and !#$%&'*+-.^_`|~), got 'x(y)'",
            "gateway.yaml:11:24: routes[0].requestHeaders.remove[1]: expected a header name such as x-env (letters, digits and !#$%&'*+-.^_`|~), got ''",
        ], text)
    }

    func testANameInTwoPlacesIsRefused() {
        let text = rejectionText(route("""
            requestHeaders:
              set: { x-a: "1", X-A: "2" }
              add: { x-b: "1" }
              remove: [X-B]
            """))
        XCTAssertEqual(text.split(separator: "\n").map(String.init), [
            "gateway.yaml:9:24: routes[0].requestHeaders.set.X-A: 'x-a' is already edited at routes[0].requestHeaders.set.x-a; a header goes in one of set, add and remove, once",
            "gateway.yaml:11:16: routes[0].requestHeaders.remove[0]: 'x-b' is already edited at routes[0].requestHeaders.add.x-b; a header goes in one of set, add and remove, once",
        ], text)
    }

    func testAModifierThatChangesNothingAndOneOnALocalAnswerAreRefused() {
        XCTAssertEqual(rejectionText(route("requestHeaders: { set: {} }")),
                       "gateway.yaml:8:21: routes[0].requestHeaders: say what changes with 'set', 'add' or 'remove'")
        XCTAssertEqual(rejectionText(route("responseHeaders: { set: { x-a: b } }", action: "directResponse: { status: 200 }")),
                       "gateway.yaml:8:5: routes[0].responseHeaders: responseHeaders only applies to routes that forward to a service, a function or a split, not to directResponse")
        XCTAssertEqual(rejectionText(route("requestHeaders: { set: { x-a: [b] } }")),
                       "gateway.yaml:8:35: routes[0].requestHeaders.set.x-a: expected a header value, got a list")
    }

    func testTheJSONDumpShowsThemAndLoadsBackRedactingCredentials() throws {
        let config = try ConfigLoader.parse(yaml: route("""
            requestHeaders:
              set: { authorization: Bearer s3cret, x-env: prod }
              add: { x-tag: a }
              remove: [x-debug]
            responseHeaders:
              set: { cache-control: no-store }
            """), file: "gateway.yaml")
        let text = config.renderJSON()
        XCTAssertFalse(text.contains("s3cret"), text)
        let json = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        let routes = try XCTUnwrap(json["routes"] as? [[String: Any]])
        let request = try XCTUnwrap(routes[0]["requestHeaders"] as? [String: Any])
        XCTAssertEqual(request["set"] as? [String: String], ["authorization": "<redacted>", "x-env": "prod"])
        XCTAssertEqual(request["add"] as? [String: String], ["x-tag": "a"])
        XCTAssertEqual(request["remove"] as? [String], ["x-debug"])
        XCTAssertEqual(routes[0]["responseHeaders"] as? [String: [String: String]], ["set": ["cache-control": "no-store"]])

        let reloaded = try ConfigLoader.parse(yaml: config.renderJSON(redacting: []), file: "running.json")
        XCTAssertEqual(reloaded.routes[0].responseHeaders, config.routes[0].responseHeaders)
        XCTAssertEqual(Set(reloaded.routes[0].requestHeaders?.set.map(\.name) ?? []), ["authorization", "x-env"])
        XCTAssertEqual(reloaded.routes[0].requestHeaders?.remove, ["x-debug"])
    }
}
