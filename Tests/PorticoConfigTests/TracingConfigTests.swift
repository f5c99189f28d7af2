import PorticoConfig
import XCTest

/// `tracing:`: what a valid section turns into, and each rejection as `portico check` prints it.
final class TracingConfigTests: XCTestCase {
    private func config(_ tracing: String) throws -> GatewayConfig {
        try ConfigLoader.parse(yaml: "listeners:\n  - address: 127.0.0.1:8080\n" + tracing, file: "gateway.yaml")
    }

    func testTracingParses() throws {
        let parsed = try config("""
            tracing:
              endpoint: http://collector.local:4318/v1/traces
              serviceName: edge
              sampling: { ratio: 0.01, parentBased: false, alwaysSampleErrors: true }
              exportInterval: 500ms
              exportTimeout: 2s
              maxQueueSize: 1000
            """)
        XCTAssertEqual(parsed.tracing, TracingConfig(
            endpoint: OTLPEndpoint(address: HostPort(host: "collector.local", port: 4318), path: "/v1/traces"),
            serviceName: "edge", ratio: 0.01, parentBased: false, alwaysSampleErrors: true,
            exportInterval: .milliseconds(500), exportTimeout: .seconds(2), maxQueueSize: 1000))
        XCTAssertTrue(parsed.renderJSON().contains("\"endpoint\" : \"http://collector.local:4318/v1/traces\""))
    }

    func testDefaults() throws {
        let tracing = try XCTUnwrap(try config("tracing:\n  endpoint: http://127.0.0.1:4318\n").tracing)
        XCTAssertEqual(tracing.endpoint.path, "/v1/traces", "OTLP/HTTP's path when the URL names none")
        XCTAssertEqual(tracing.ratio, 1, "OpenTelemetry's default sampler records every new trace")
        XCTAssertTrue(tracing.parentBased)
        XCTAssertFalse(tracing.alwaysSampleErrors)
        XCTAssertEqual(tracing.serviceName, "portico")
        XCTAssertNil(try config("").tracing, "no section, no tracing")
    }

    func testRejections() {
        let base = "listeners:\n  - address: 127.0.0.1:8080\n"
        XCTAssertEqual(rejectionText(base + "tracing:\n  serviceName: x\n"),
                       "gateway.yaml:4:3: tracing.endpoint: missing required key 'endpoint' (the collector's OTLP/HTTP URL, such as http://127.0.0.1:4318/v1/traces)")
        XCTAssertTrue(rejectionText(base + "tracing:\n  endpoint: grpc://127.0.0.1:4317\n")
            .contains("gateway.yaml:4:13: tracing.endpoint: expected an http:// URL"))
        XCTAssertTrue(rejectionText(base + "tracing:\n  endpoint: http://127.0.0.1:4318\n  sampling: { ratio: 5 }\n")
            .contains("tracing.sampling.ratio: must be from 0 to 1"))
        XCTAssertTrue(rejectionText(base + "tracing:\n  endpoint: http://127.0.0.1:4318\n  sampling: { ratio: -1 }\n")
            .contains("tracing.sampling.ratio: expected a number from 0 to 1"))
        XCTAssertTrue(rejectionText(base + "tracing:\n  endpoint: http://127.0.0.1:4318\n  sampler: {}\n")
            .contains("tracing.sampler"))
        XCTAssertTrue(rejectionText(base + "tracing:\n  endpoint: http://127.0.0.1:4318\n  exportTimeout: 5\n")
            .contains("tracing.exportTimeout: expected a duration"))
    }
}
