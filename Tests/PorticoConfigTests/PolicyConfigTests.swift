import Foundation
import PorticoConfig
import XCTest

/// `policies:`, a route's and a listener's `policies:`, and a route's `fault:`.
final class PolicyConfigTests: XCTestCase {
    private func errorText(_ yaml: String, file: StaticString = #filePath, line: UInt = #line) -> String {
        rejectionText(yaml, file: file, line: line)
    }

    func testPoliciesFaultAndTheirDefaults() throws {
        let config = try ConfigLoader.parse(yaml: """
            listeners:
              - name: public
                address: 127.0.0.1:8080
                policies: [per-ip]
            policies:
              per-ip:
                rateLimit: { requests: 100, per: 1s, burst: 50 }
              per-key:
                rateLimit: { requests: 5, per: 1m, key: { header: X-API-Key } }
            services:
              api: { endpoints: [127.0.0.1:9001] }
            routes:
              - match: { prefix: /api/ }
                service: api
                policies: [per-key, per-ip, per-key]
                fault: { abort: { percent: 0.5, status: 503 }, delay: { percent: 10, duration: 250ms } }
              - match: { prefix: / }
                service: api
            """, file: "gateway.yaml")
        XCTAssertEqual(config.policies.map(\.name), ["per-ip", "per-key"])
        XCTAssertEqual(config.policies[0].kind, .rateLimit(RateLimitConfig(requests: 100, per: .seconds(1), burst: 50)))
        XCTAssertEqual(config.policies[1].kind,
                       .rateLimit(RateLimitConfig(requests: 5, per: .seconds(60), burst: 5, key: .header("x-api-key"))))
        XCTAssertEqual(config.listeners[0].policies, ["per-ip"])
        XCTAssertEqual(config.routes[0].policies, ["per-key", "per-ip"], "named once each, in order")
        XCTAssertEqual(config.routes[0].fault, FaultConfig(abort: .init(percent: 0.5, status: 503),
                                                           delay: .init(percent: 10, duration: .milliseconds(250))))
        XCTAssertEqual(config.routes[1].policies, [])
        XCTAssertNil(config.routes[1].fault)
    }

    func testUnknownPolicyNameOnARouteSuggestsTheClosest() {
        XCTAssertEqual(errorText("""
            listeners:
              - address: 127.0.0.1:8080
            policies:
              per-ip:
                rateLimit: { requests: 10 }
            routes:
              - match: { prefix: / }
                directResponse: { status: 200 }
                policies: [per-ipp]
            """),
            "gateway.yaml:9:16: routes[0].policies[0]: unknown policy 'per-ipp' (did you mean 'per-ip'?)")
    }

    func testUnknownPolicyOnAListenerWithNoPoliciesDeclared() {
        XCTAssertEqual(errorText("""
            listeners:
              - address: 127.0.0.1:8080
                policies: [strict]
            """),
            "gateway.yaml:3:16: listeners[0].policies[0]: unknown policy 'strict' (the top-level 'policies:' section declares none)")
    }

    func testBadRateLimitValuesAreEachReported() {
        let text = errorText("""
            listeners:
              - address: 127.0.0.1:8080
            policies:
              a:
                rateLimit: { requests: 0, per: 0s, burst: -1, key: client }
              b:
                rateLimit: { per: 1s }
              c: {}
              d:
                jwt: { issuer: x }
              e:
                rateLimit: { requests: 1, per: 25h }
            """)
        XCTAssertTrue(text.contains("gateway.yaml:5:28: policies.a.rateLimit.requests: must be at least 1, got 0"), text)
        XCTAssertTrue(text.contains("gateway.yaml:5:36: policies.a.rateLimit.per: must be longer than 0s"), text)
        XCTAssertTrue(text.contains("gateway.yaml:5:47: policies.a.rateLimit.burst: must be at least 1, got -1"), text)
        XCTAssertTrue(text.contains("gateway.yaml:5:56: policies.a.rateLimit.key: expected one of client_ip, got 'client'"), text)
        XCTAssertTrue(text.contains("gateway.yaml:7:16: policies.b.rateLimit.requests: a rate limit needs 'requests'"), text)
        XCTAssertTrue(text.contains("gateway.yaml:8:6: policies.c: a policy has exactly one of rateLimit, jwt, authorization"), text)
        XCTAssertTrue(text.contains("gateway.yaml:10:10: policies.d.jwt.jwks: a jwt policy needs its keys"), text)
        XCTAssertTrue(text.contains("policies.e.rateLimit.per: must be at most 24h, got 90000s"), text)
    }

    func testBadFaultValues() {
        let text = errorText("""
            listeners:
              - address: 127.0.0.1:8080
            services:
              api: { endpoints: [127.0.0.1:9001] }
            routes:
              - match: { prefix: /a/ }
                service: api
                fault: { abort: { percent: 101, status: 99 }, delay: { percent: 5 } }
              - match: { prefix: / }
                directResponse: { status: 200 }
                fault: { abort: { percent: 1, status: 503 } }
            """)
        XCTAssertTrue(text.contains("gateway.yaml:8:32: routes[0].fault.abort.percent: must be from 0 to 100, got 101"), text)
        XCTAssertTrue(text.contains("gateway.yaml:8:45: routes[0].fault.abort.status: must be an HTTP status from 200 to 599, got 99"), text)
        XCTAssertTrue(text.contains("routes[0].fault.delay.duration: missing required key 'duration'"), text)
        XCTAssertTrue(text.contains("gateway.yaml:11:5: routes[1].fault: fault only applies to routes that forward"), text)
    }

    func testPoliciesAndFaultsRenderAsJSONThatLoadsBack() throws {
        let original = try ConfigLoader.parse(yaml: """
            listeners:
              - address: 127.0.0.1:8080
                policies: [a]
            policies:
              a: { rateLimit: { requests: 7, per: 2m, burst: 3, key: { header: x-k } } }
              b: { rateLimit: { requests: 1 } }
            services:
              api: { endpoints: [127.0.0.1:9001] }
            routes:
              - match: { prefix: / }
                service: api
                policies: [b]
                fault: { abort: { percent: 2.5, status: 500 }, delay: { percent: 100, duration: 1s } }
            """, file: "gateway.yaml")
        let reloaded = try ConfigLoader.parse(yaml: original.renderJSON(), file: "running.json")
        XCTAssertEqual(reloaded.policies.map(\.kind), original.policies.map(\.kind))
        XCTAssertEqual(reloaded.listeners, original.listeners)
        XCTAssertEqual(reloaded.routes.map(\.policies), [["b"]])
        XCTAssertEqual(reloaded.routes.map(\.fault), original.routes.map(\.fault))
    }
}

final class RetryConfigTests: XCTestCase {
    func testRetriesAndRetryBudget() throws {
        let config = try ConfigLoader.parse(yaml: """
            listeners:
              - address: 127.0.0.1:8080
            services:
              api:
                endpoints: [127.0.0.1:9001]
                retryBudget: { percent: 10, interval: 30s, minRetriesPerSecond: 2, minRetries: 1 }
              other: { endpoints: [127.0.0.1:9002] }
            routes:
              - match: { prefix: /a/ }
                service: api
                retries: { attempts: 3, perTryTimeout: 2s, retryOn: [5xx, reset], replayBuffer: 1MiB }
              - match: { prefix: / }
                service: other
                retries: { attempts: 1 }
            """, file: "gateway.yaml")
        XCTAssertEqual(config.services[0].retryBudget, RetryBudgetConfig(percent: 10, interval: .seconds(30),
                                                                               minRetriesPerSecond: 2, minRetries: 1))
        XCTAssertEqual(config.services[1].retryBudget, RetryBudgetConfig(percent: 20, interval: .seconds(10), minRetriesPerSecond: 10,
                                                                          minRetries: 0),
                       "Linkerd's: 20 % over 10 s, plus 10 a second")
        XCTAssertEqual(config.routes[0].retries, RetryConfig(attempts: 3, perTryTimeout: .seconds(2),
                                                             retryOn: [.serverError, .reset], replayBuffer: 1024 * 1024))
        XCTAssertEqual(config.routes[1].retries, RetryConfig(attempts: 1),
                       "Istio's default conditions: connect-failure, refused-stream, gateway-error; 64 KiB replay")
    }

    func testBadRetries() {
        let text = rejectionText("""
            listeners:
              - address: 127.0.0.1:8080
            services:
              api: { endpoints: [127.0.0.1:9001], retryBudget: { percent: 120 } }
            routes:
              - match: { prefix: /a/ }
                service: api
                retries: { attempts: 11, retryOn: [5xx, 4xx] }
              - match: { prefix: / }
                directResponse: { status: 200 }
                retries: { perTryTimeout: 1s }
            """)
        XCTAssertTrue(text.contains("services.api.retryBudget.percent: must be from 0 to 100, got 120"), text)
        XCTAssertTrue(text.contains("gateway.yaml:8:26: routes[0].retries.attempts: must be from 0 to 10"), text)
        XCTAssertTrue(text.contains("routes[0].retries.retryOn[1]: expected one of 5xx, gateway-error, connect-failure, reset, retriable-4xx, refused-stream, cancelled, deadline-exceeded, internal, resource-exhausted, unavailable, got '4xx'"), text)
        XCTAssertTrue(text.contains("routes[1].retries.attempts: retries need 'attempts'"), text)
        XCTAssertTrue(text.contains("routes[1].retries: retries only applies to routes that forward"), text)
    }
}

final class ExampleConfigFilesTests: XCTestCase {
    /// Every config under config/examples loads: an example that no longer matches the schema
    /// would teach the wrong thing.
    func testEveryExampleConfigLoads() throws {
        let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let examples = repository.appendingPathComponent("config/examples")
        let files = try FileManager.default.contentsOfDirectory(atPath: examples.path).filter { $0.hasSuffix(".yaml") }
        XCTAssertTrue(files.contains("policies.yaml") && files.contains("legacy-vs-new.yaml"), "\(files)")
        for file in files + ["../gateway.yaml"] {
            XCTAssertNoThrow(try ConfigLoader.load(file: examples.appendingPathComponent(file).path), file)
        }
        let policies = try ConfigLoader.load(file: examples.appendingPathComponent("policies.yaml").path)
        XCTAssertEqual(policies.policies.count, 2)
        XCTAssertNotNil(policies.routes.first { $0.name == "api" }?.retries)
        XCTAssertEqual(policies.routes.first { $0.name == "api" }?.responseHeaders?.remove, ["server"])
    }
}
