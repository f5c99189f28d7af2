import Foundation
import PorticoConfig
import XCTest

/// What a user sees for a broken file: `FILE:LINE:COLUMN: KEY: message`, one line per problem.
final class ConfigLoaderErrorTests: XCTestCase {
    private func errorText(_ yaml: String, file: StaticString = #filePath, line: UInt = #line) -> String {
        rejectionText(yaml, file: file, line: line)
    }

    func testUnknownKeySuggestsTheClosestOne() {
        XCTAssertEqual(errorText("""
            listeners:
              - address: 127.0.0.1:8080
            routes:
              - match: { prefx: /v1/ }
                directResponse: { status: 200 }
            """),
            "gateway.yaml:4:14: routes[0].match.prefx: unknown key 'prefx' (did you mean 'prefix'?)")
    }

    func testUnknownKeyWithoutACloseMatchListsTheAllowedKeys() {
        XCTAssertEqual(errorText("""
            listeners:
              - address: 127.0.0.1:8080
                backlog: 128
            """),
            "gateway.yaml:3:5: listeners[0].backlog: unknown key 'backlog' (expected one of name, address, tls, policies, headersWithUnderscores)")
    }

    func testUnknownTopLevelKey() {
        XCTAssertEqual(errorText("""
            listeners:
              - address: 127.0.0.1:8080
            rotues: []
            """),
            "gateway.yaml:3:1: rotues: unknown key 'rotues' (did you mean 'routes'?)")
    }

    func testBareNumberIsNotADuration() {
        XCTAssertEqual(errorText("""
            listeners:
              - address: 127.0.0.1:8080
            services:
              api: { endpoints: [127.0.0.1:9001] }
            routes:
              - match: { prefix: / }
                service: api
                timeout: 10
            """),
            "gateway.yaml:8:14: routes[0].timeout: expected a duration like 250ms, 2s, 1m, got '10'")
    }

    func testBadSizeAndZeroDuration() {
        XCTAssertEqual(errorText("""
            listeners:
              - address: 127.0.0.1:8080
            limits:
              maxRequestBody: 10 megs
              drainTimeout: 0s
              requestHeadersTimeout: soon
            """), """
            gateway.yaml:4:19: limits.maxRequestBody: expected a size like 512KiB, 10MiB, 1GB or a number of bytes, got '10 megs'
            gateway.yaml:5:17: limits.drainTimeout: must be longer than 0s
            gateway.yaml:6:26: limits.requestHeadersTimeout: expected a duration like 250ms, 2s, 1m, got 'soon'
            """)
    }

    func testRequestHeadersTimeoutIsReadAndDefaultsToTenSeconds() throws {
        let set = try ConfigLoader.parse(yaml: """
            listeners:
              - address: 127.0.0.1:8080
            limits:
              requestHeadersTimeout: 2500ms
            """, file: "gateway.yaml")
        XCTAssertEqual(set.limits.requestHeadersTimeout, .milliseconds(2500))
        let unset = try ConfigLoader.parse(yaml: "listeners:\n  - address: 127.0.0.1:8080\n", file: "gateway.yaml")
        XCTAssertEqual(unset.limits.requestHeadersTimeout, .seconds(10))
    }

    func testUnknownServicePointsAtTheValue() {
        XCTAssertEqual(errorText("""
            listeners:
              - address: 127.0.0.1:8080
            services:
              legacy: { endpoints: [127.0.0.1:9001] }
            routes:
              - match: { prefix: / }
                split:
                  - { service: legacy, weight: 1 }
                  - { service: payments, weight: 1 }
            """),
            "gateway.yaml:9:20: routes[0].split[1].service: unknown service 'payments' (declared: legacy)")
    }

    func testUnknownServiceDeclaredAfterTheRoutesStillResolvesAndATypoIsSuggested() {
        XCTAssertEqual(errorText("""
            listeners:
              - address: 127.0.0.1:8080
            routes:
              - match: { prefix: /a/ }
                service: legacy
              - match: { prefix: /b/ }
                service: legcy
            services:
              legacy: { endpoints: [127.0.0.1:9001] }
            """),
            "gateway.yaml:7:14: routes[1].service: unknown service 'legcy' (did you mean 'legacy'?)")
    }

    func testTwoActionsAndNoActionNameTheRoute() {
        XCTAssertEqual(errorText("""
            listeners:
              - address: 127.0.0.1:8080
            services:
              legacy: { endpoints: [127.0.0.1:9001] }
            routes:
              - name: old-api
                match: { prefix: /old/ }
                service: legacy
                redirect: { host: new.example.com }
              - match: { prefix: /x/ }
                timeout: 1s
            """), """
            gateway.yaml:6:5: routes[0]: route 'old-api' has more than one action ('service' and 'redirect'); \
            give it exactly one of service, function, split, directResponse or redirect
            gateway.yaml:10:5: routes[1]: route 'route-1' has no action; \
            give it exactly one of service, function, split, directResponse or redirect
            """)
    }

    func testInvalidRegex() {
        XCTAssertEqual(errorText("""
            listeners:
              - address: 127.0.0.1:8080
            routes:
              - match: { regex: "/items/[0-9+" }
                directResponse: { status: 404 }
            """),
            "gateway.yaml:4:21: routes[0].match.regex: invalid regular expression: expected ']'")
    }

    func testBadListenerAddress() {
        XCTAssertEqual(errorText("""
            listeners:
              - name: public
                address: 127.0.0.1:99999
            """),
            "gateway.yaml:3:14: listeners[0].address: expected an address like 127.0.0.1:8080, localhost:80 "
                + "or \"[::1]:8443\" (port 0-65535), got '127.0.0.1:99999'")
    }

    func testBadServiceEndpointNamesItsIndex() {
        XCTAssertEqual(errorText("""
            listeners:
              - address: 127.0.0.1:8080
            services:
              legacy:
                endpoints: [127.0.0.1:9001, 127.0.0.1]
            """),
            "gateway.yaml:5:33: services.legacy.endpoints[1]: expected an address like 127.0.0.1:8080, localhost:80 "
                + "or \"[::1]:8443\" (port 1-65535), got '127.0.0.1'")
    }

    func testYamlSyntaxErrorUsesTheParsersPosition() {
        XCTAssertEqual(errorText("""
            listeners:
              - address: 127.0.0.1:8080
            routes:
              - match: { prefix: /v1/
                service: legacy
            """),
            "gateway.yaml:5:12: (yaml): did not find expected ',' or '}' "
                + "(while parsing a flow mapping at line 4, column 12)")
    }

    func testDuplicateKeyIsAYamlError() {
        XCTAssertEqual(errorText("""
            listeners:
              - address: 127.0.0.1:8080
            listeners:
              - address: 127.0.0.1:8081
            """),
            "gateway.yaml:1:1: (yaml): duplicate key 'listeners' in one mapping; each key may appear once")
    }

    func testListenerRules() {
        XCTAssertEqual(errorText("""
            listeners:
              - name: public
                address: 127.0.0.1:8080
              - name: public
                address: 127.0.0.1:8080
                tls: { certificate: certs/gateway.pem }
            admin:
              address: 127.0.0.1:8080
            """), """
            gateway.yaml:4:11: listeners[1].name: listener name 'public' is already used by listeners[0]
            gateway.yaml:5:14: listeners[1].address: address 127.0.0.1:8080 is already used by listener 'public'
            gateway.yaml:6:10: listeners[1].tls.key: tls needs both 'certificate' and 'key'; 'key' is missing
            gateway.yaml:8:12: admin.address: address 127.0.0.1:8080 is already used by listener 'public'
            """)
    }

    func testAtLeastOneListener() {
        XCTAssertEqual(errorText("listeners: []\n"),
                       "gateway.yaml:1:12: listeners: at least one listener is required")
        XCTAssertEqual(errorText("accessLog: { format: json }\n"),
                       "gateway.yaml:1:1: listeners: at least one listener is required")
        XCTAssertEqual(errorText(""),
                       "gateway.yaml:1:1: listeners: the file is empty; expected at least a 'listeners' section")
    }

    func testMatchRules() {
        XCTAssertEqual(errorText("""
            listeners:
              - address: 127.0.0.1:8080
            routes:
              - match: { prefix: /a/, path: /a }
                directResponse: { status: 200 }
              - match: { prefix: v1/, host: "api.example.com:8443" }
                directResponse: { status: 200 }
              - match: { methods: [GET, "BAD METHOD"], headers: { "x trace": on, x-debug: { present: maybe } } }
                directResponse: { status: 200 }
              - directResponse: { status: 200 }
            """), """
            gateway.yaml:4:27: routes[0].match.path: only one of prefix, path, regex may be set; this match already has 'prefix'
            gateway.yaml:6:22: routes[1].match.prefix: must start with '/', got 'v1/'
            gateway.yaml:6:33: routes[1].match.host: must not include a port; routes match the host name whatever the port, \
            got 'api.example.com:8443'
            gateway.yaml:8:29: routes[2].match.methods[1]: 'BAD METHOD' is not a valid HTTP method
            gateway.yaml:8:55: routes[2].match.headers.x trace: 'x trace' is not a valid header name
            gateway.yaml:8:90: routes[2].match.headers.x-debug.present: expected true or false, got 'maybe'
            gateway.yaml:10:5: routes[3].match: route 'route-3' needs a 'match'; use `match: { prefix: / }` to match every request
            """)
    }

    func testActionRules() {
        XCTAssertEqual(errorText("""
            listeners:
              - address: 127.0.0.1:8080
            services:
              api: { endpoints: [127.0.0.1:9001] }
            routes:
              - match: { path: /old }
                redirect: { prefix: /new/, status: 305 }
              - match: { path: /teapot }
                directResponse: { status: 150 }
                rewrite: { prefix: / }
              - match: { prefix: / }
                split:
                  - { service: api, weight: 0 }
                  - { service: api }
            """), """
            gateway.yaml:7:17: routes[0].redirect.prefix: 'prefix' needs a route that matches on a prefix; \
            use 'path' to replace the whole path
            gateway.yaml:7:40: routes[0].redirect.status: must be 301, 302, 303, 307 or 308, got 305
            gateway.yaml:9:31: routes[1].directResponse.status: must be between 200 and 599, got 150
            gateway.yaml:10:5: routes[1].rewrite: rewrite only applies to routes that forward to a service, a function or a split, \
            not to directResponse
            gateway.yaml:13:33: routes[2].split[0].weight: must be a positive whole number up to 1000000, got 0
            gateway.yaml:14:9: routes[2].split[1].weight: missing required key 'weight'
            gateway.yaml:14:20: routes[2].split[1].service: service 'api' appears twice in this split; \
            add the weights into one entry
            """)
    }

    func testFunctionNamesAreCheckedAndSplitEntriesNameOneBackend() {
        let tooLong = String(repeating: "f", count: 64)
        XCTAssertEqual(errorText("""
            listeners:
              - address: 127.0.0.1:8080
            services:
              api: { endpoints: [127.0.0.1:9001] }
            routes:
              - match: { prefix: /a/ }
                function: Hello_World
              - match: { prefix: / }
                split:
                  - { function: hello, weight: 1 }
                  - { function: hello, weight: 2 }
                  - { service: api, function: api, weight: 1 }
                  - { weight: 1 }
                  - { function: -bad, weight: 1 }
                  - { function: \(tooLong), weight: 1 }
            """), """
            gateway.yaml:7:15: routes[0].function: 'Hello_World' is not a valid function name; \
            use lower-case letters, digits and '-', starting and ending with a letter or digit
            gateway.yaml:11:21: routes[1].split[1].function: function 'hello' appears twice in this split; \
            add the weights into one entry
            gateway.yaml:12:25: routes[1].split[2].function: a split entry goes to one backend; \
            set either 'service' or 'function', not both
            gateway.yaml:13:9: routes[1].split[3].service: a split entry needs a 'service' or a 'function'
            gateway.yaml:14:21: routes[1].split[4].function: '-bad' is not a valid function name; \
            use lower-case letters, digits and '-', starting and ending with a letter or digit
            gateway.yaml:15:21: routes[1].split[5].function: '\(tooLong)' is 64 characters long; \
            a function name has at most 63
            """)
    }

    func testASplitWrittenAsAMappingTakesBackendsAndStickyOn() throws {
        let config = try ConfigLoader.parse(yaml: """
            listeners:
              - address: 127.0.0.1:8080
            services:
              new: { endpoints: [127.0.0.1:9001] }
              old: { endpoints: [127.0.0.1:9002] }
            routes:
              - match: { prefix: /a/ }
                split:
                  backends: [{ service: new, weight: 90 }, { service: old, weight: 10 }]
                  stickyOn: { header: X-User }
              - match: { prefix: /b/ }
                split:
                  backends: [{ service: new, weight: 1 }]
                  stickyOn: { cookie: Session }
              - match: { prefix: / }
                split: { backends: [{ service: new, weight: 1 }] }
            """, file: "gateway.yaml")
        XCTAssertEqual(config.routes[0].action, .split([WeightedBackend(service: "new", weight: 90),
                                                        WeightedBackend(service: "old", weight: 10)]))
        XCTAssertEqual(config.routes[0].splitStickyOn, .header("x-user"), "header names are lower-cased")
        XCTAssertEqual(config.routes[1].splitStickyOn, .cookie("Session"), "cookie names are case-sensitive")
        XCTAssertNil(config.routes[2].splitStickyOn)
        XCTAssertEqual(config.routes[2].action, .split([WeightedBackend(service: "new", weight: 1)]))
    }

    func testSplitStickyOnMistakes() {
        XCTAssertEqual(errorText("""
            listeners:
              - address: 127.0.0.1:8080
            services:
              api: { endpoints: [127.0.0.1:9001] }
            routes:
              - match: { prefix: /a/ }
                split: { backend: [{ service: api, weight: 1 }] }
              - match: { prefix: /b/ }
                split:
                  backends: [{ service: api, weight: 1 }]
                  stickyOn: { header: x-user, cookie: session }
              - match: { prefix: /c/ }
                split:
                  backends: [{ service: api, weight: 1 }]
                  stickyOn: { cookie: "a;b" }
              - match: { prefix: /d/ }
                split:
                  backends: [{ service: api, weight: 1 }]
                  stickyOn: { header: [x] }
              - match: { prefix: / }
                split:
                  backends: [{ service: api, weight: 1 }]
                  stickyOn: {}
            """), """
            gateway.yaml:7:12: routes[0].split.backends: a split written as a mapping needs 'backends', \
            the list of { service, weight } or { function, weight }
            gateway.yaml:7:14: routes[0].split.backend: unknown key 'backend' (did you mean 'backends'?)
            gateway.yaml:11:35: routes[1].split.stickyOn.cookie: stickyOn takes one of 'header' or 'cookie', not both
            gateway.yaml:15:27: routes[2].split.stickyOn.cookie: expected a cookie name such as session, got 'a;b'
            gateway.yaml:19:27: routes[3].split.stickyOn.header: expected a header name such as x-user, got a list
            gateway.yaml:23:17: routes[4].split.stickyOn: stickyOn needs 'header' or 'cookie': \
            where the value that keeps a client on one side is
            """)
    }

    func testAServiceAndAFunctionOfTheSameNameAreDifferentBackends() throws {
        let config = try ConfigLoader.parse(yaml: """
            listeners:
              - address: 127.0.0.1:8080
            services:
              hello: { endpoints: [127.0.0.1:9001] }
            routes:
              - match: { prefix: / }
                split:
                  - { service: hello, weight: 1 }
                  - { function: hello, weight: 1 }
            """, file: "gateway.yaml")
        XCTAssertEqual(config.routes.first?.action, .split([WeightedBackend(service: "hello", weight: 1),
                                                            WeightedBackend(function: "hello", weight: 1)]))
    }

    func testEveryErrorIsReportedInFileOrder() throws {
        let yaml = """
            listeners:
              - address: localhost
            limits: { idleTimeout: soon }
            services:
              api: { endpoints: [], loadBalancer: round-robin }
            routes:
              - match: { prefix: / }
                service: missing
            accessLog: { format: text }
            """
        XCTAssertThrowsError(try ConfigLoader.parse(yaml: yaml, file: "gateway.yaml")) { error in
            let diagnostics = (error as? ConfigError)?.diagnostics ?? []
            XCTAssertEqual(diagnostics.map(\.key), [
                "listeners[0].address",
                "limits.idleTimeout",
                "services.api.endpoints",
                "services.api.loadBalancer",
                "routes[0].service",
                "accessLog.format",
            ])
            XCTAssertEqual(diagnostics.map(\.location.line), [2, 3, 5, 5, 8, 9])
            XCTAssertEqual(diagnostics.last?.description,
                           "gateway.yaml:9:22: accessLog.format: expected one of json, off, got 'text'")
        }
    }

    func testTopLevelMustBeAMapping() {
        XCTAssertEqual(errorText("- listeners\n"), "gateway.yaml:1:1: (root): expected a mapping with keys "
            + "listeners, admin, limits, accessLog, policies, services, routes, tcp, tracing, got a list")
    }
}
