import Foundation
import JWTTestSupport
import XCTest

/// OpenTelemetry traces through the real binary, received by a real OTLP/HTTP collector
/// (`OTLPCollector`, which decodes with the protocol's own generated code).
final class TracingEndToEndTests: GatewayTestCase {
    var collector: OTLPCollector!
    let issuer = "https://auth.example.com"

    override func setUpWithError() throws {
        try super.setUpWithError()
        collector = try OTLPCollector()
    }

    override func tearDown() {
        collector?.stop()
        super.tearDown()
    }

    private func tracing(_ endpoint: String? = nil, ratio: String = "1", extra: String = "") -> String {
        """
        tracing:
          endpoint: \(endpoint ?? collector.endpoint)
          serviceName: edge-gateway
          exportInterval: 100ms
          sampling: { ratio: \(ratio)\(extra) }
        """
    }

    /// Every request to the echo upstream, on route `api`.
    private var apiRoute: String {
        """
        services:
          backend: { endpoints: [\(upstream.address)] }
        routes:
          - name: api
            match: { prefix: / }
            service: backend
        """
    }

    /// A client `traceparent` with a known trace id, sampled.
    private func parent(_ traceID: String, span: String = "00f067aa0ba902b7", sampled: Bool = true) -> String {
        "traceparent: 00-\(traceID)-\(span)-\(sampled ? "01" : "00")"
    }

    private func newTraceID() -> String {
        (0..<32).map { _ in String("0123456789abcdef".randomElement()!) }.joined()
    }

    /// A retried request: one server span whose parent is the client's span, and a client span
    /// per try, the second with `http.request.resend_count`; the upstream gets the trace and the
    /// second try's span as its parent.
    func testRetriedRequestSpanTreeAndPropagation() throws {
        gateway = try PorticoProcess(config: """
            \(tracing())
            services:
              backend: { endpoints: [\(upstream.address)] }
            routes:
              - name: api
                match: { prefix: /flaky/ }
                service: backend
                retries: { attempts: 2, retryOn: [5xx] }
            """)
        let traceID = newTraceID()
        let response = try Curl.run(["-H", parent(traceID), "-H", "tracestate: vendor=abc", "\(gateway.http)/flaky/1/trace-a"])
        XCTAssertEqual(response.status, 200, response.body)

        let spans = collector.trace(traceID) { $0.count >= 3 }
        let server = try XCTUnwrap(spans.first { $0.kind == 2 }, "\(spans)")
        XCTAssertEqual(server.parentSpanID, "00f067aa0ba902b7", "the client's span is the parent")
        XCTAssertEqual(server.name, "GET api")
        XCTAssertEqual(server.serviceName, "edge-gateway")
        XCTAssertEqual(server.traceState, "vendor=abc")
        XCTAssertEqual(server.string("http.request.method"), "GET")
        XCTAssertEqual(server.string("url.path"), "/flaky/1/trace-a")
        XCTAssertEqual(server.string("http.route"), "api")
        XCTAssertEqual(server.int("http.response.status_code"), 200)
        XCTAssertEqual(server.string("server.address"), "127.0.0.1")
        XCTAssertEqual(server.int("server.port"), gateway.httpPort)
        XCTAssertEqual(server.string("client.address"), "127.0.0.1")
        XCTAssertEqual(server.string("network.protocol.version"), "1.1")
        XCTAssertEqual(server.statusCode, 0, "a 200 is not an error")

        let tries = spans.filter { $0.kind == 3 }.sorted { $0.start < $1.start }
        XCTAssertEqual(tries.count, 2, "\(spans)")
        guard tries.count == 2 else { return }
        XCTAssertTrue(tries.allSatisfy { $0.parentSpanID == server.spanID })
        XCTAssertEqual(tries[0].int("http.response.status_code"), 503)
        XCTAssertEqual(tries[0].statusCode, 2, "the 503 try is an error")
        XCTAssertNil(tries[0].int("http.request.resend_count"))
        XCTAssertEqual(tries[1].int("http.response.status_code"), 200)
        XCTAssertEqual(tries[1].int("http.request.resend_count"), 1)
        XCTAssertEqual(tries[1].int("server.port"), upstream.port)
        XCTAssertTrue(server.start <= tries[0].start && tries[1].end <= server.end, "the tries sit inside the request")

        // The upstream (an echo) saw the trace, with the second try's span as its parent, and
        // the vendors' state untouched.
        XCTAssertTrue(response.body.contains("traceparent: 00-\(traceID)-\(tries[1].spanID)-01"), response.body)
        XCTAssertTrue(response.body.contains("tracestate: vendor=abc"), response.body)
        // The access log line names the trace and the server span.
        XCTAssertTrue(eventually { self.gateway.stdout.contains("\"trace_id\":\"\(traceID)\",\"span_id\":\"\(server.spanID)\"") },
                      gateway.stdout)
    }

    /// A request the `jwt` policy refuses is one server span (401, not an error: the client's
    /// fault), with no try: nothing went upstream.
    func testRequestRejectedByJWTIsOneServerSpan() async throws {
        let mint = TokenMint()
        try await mint.addKey(kid: "rsa-1", algorithm: "RS256")
        let jwks = mint.jwks()
        gateway = try PorticoProcess(config: """
            \(tracing())
            policies:
              api-jwt:
                jwt: { issuer: \(issuer), jwks: jwks.json }
            services:
              backend: { endpoints: [\(upstream.address)] }
            routes:
              - name: private
                match: { prefix: /private/ }
                service: backend
                policies: [api-jwt]
            """) { root in
            try jwks.write(to: root.appendingPathComponent("jwks.json"), atomically: true, encoding: .utf8)
        }
        let traceID = newTraceID()
        XCTAssertEqual(try Curl.run(["-H", parent(traceID), "\(gateway.http)/private/x"]).status, 401)
        let token = try mint.token(claims: ["iss": issuer, "sub": "ada", "exp": Int(Date().timeIntervalSince1970) + 600],
                                   kid: "rsa-1")
        let allowedTrace = newTraceID()
        XCTAssertEqual(try Curl.run(["-H", parent(allowedTrace), "-H", "authorization: Bearer \(token)",
                                     "\(gateway.http)/private/x"]).status, 200)

        let spans = collector.trace(traceID) { !$0.isEmpty }
        XCTAssertEqual(spans.count, 1, "\(spans)")
        XCTAssertEqual(spans.first?.kind, 2)
        XCTAssertEqual(spans.first?.int("http.response.status_code"), 401)
        XCTAssertEqual(spans.first?.string("http.route"), "private")
        XCTAssertEqual(spans.first?.statusCode, 0, "a 4xx is not a server error")
        XCTAssertEqual(spans.first?.string("portico.local_reply"), "jwt_missing")
        // The same route with a token: the request went upstream, so it has a try.
        let allowed = collector.trace(allowedTrace) { $0.count >= 2 }
        XCTAssertEqual(allowed.map(\.kind).sorted(), [2, 3])
    }

    /// A function's cold start: the request's trace holds the wait for a worker as a span of
    /// its own, with the start's phases as events, and the worker gets the trace.
    func testFunctionColdStartSpans() throws {
        gateway = try PorticoProcess(config: """
            \(tracing())
            routes:
              - name: echo
                match: { prefix: /echo/ }
                function: echo
            """) { root in
            try self.writeFunction("echo", script: SecurityEndToEndTests.headerEchoWorker, in: root)
        }
        XCTAssertTrue(eventually { self.gateway.functionEntry("echo") != nil }, "the function is deployed")
        let traceID = newTraceID()
        let response = try Curl.run(["-H", parent(traceID), "\(gateway.http)/echo/"])
        XCTAssertEqual(response.status, 200, response.body)

        let spans = collector.trace(traceID) { $0.count >= 3 }
        let server = try XCTUnwrap(spans.first { $0.kind == 2 }, "\(spans)")
        let coldStart = try XCTUnwrap(spans.first { $0.name == "function cold start" }, "\(spans)")
        XCTAssertEqual(coldStart.parentSpanID, server.spanID)
        XCTAssertEqual(coldStart.attributes["faas.coldstart"] as? Bool, true)
        XCTAssertEqual(coldStart.events.map(\.name), ["spawn", "spawned", "ready", "first response"])
        XCTAssertNotNil(coldStart.events.first { $0.name == "ready" }?.attributes["portico.start_to_ready_us"])
        let worker = try XCTUnwrap(spans.first { $0.kind == 3 }, "\(spans)")
        XCTAssertTrue(coldStart.end <= worker.start + 1_000_000, "the try starts once the worker is handed over")
        XCTAssertTrue(response.body.contains("traceparent: 00-\(traceID)-\(worker.spanID)-01"), response.body)

        // Warm now: no cold-start span.
        let warmTrace = newTraceID()
        XCTAssertEqual(try Curl.run(["-H", parent(warmTrace), "\(gateway.http)/echo/"]).status, 200)
        let warm = collector.trace(warmTrace) { $0.count >= 2 }
        XCTAssertEqual(warm.map(\.kind).sorted(), [2, 3], "\(warm)")
    }

    /// An exec-mode function gets the trace in its environment (`HTTP_TRACEPARENT`).
    func testExecFunctionGetsTheTrace() throws {
        gateway = try PorticoProcess(config: """
            \(tracing())
            routes:
              - name: exec
                match: { prefix: /exec/ }
                function: printer
            """) { root in
            let folder = root.appendingPathComponent("Functions/printer")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            try "#!/bin/sh\necho \"parent=$HTTP_TRACEPARENT\"\n".write(to: folder.appendingPathComponent("run.sh"),
                                                                        atomically: true, encoding: .utf8)
            chmod(folder.appendingPathComponent("run.sh").path, 0o755)
            try "command: [\"./run.sh\"]\nmode: exec\n".write(to: folder.appendingPathComponent("function.yaml"),
                                                               atomically: true, encoding: .utf8)
        }
        XCTAssertTrue(eventually { self.gateway.functionEntry("printer") != nil }, "the function is deployed")
        let traceID = newTraceID()
        let response = try Curl.run(["-H", parent(traceID), "\(gateway.http)/exec/"])
        XCTAssertEqual(response.status, 200, response.body)
        let spans = collector.trace(traceID) { $0.count >= 2 }
        let invocation = try XCTUnwrap(spans.first { $0.kind == 3 }, "\(spans)")
        XCTAssertEqual(response.body.trimmingCharacters(in: .whitespacesAndNewlines),
                       "parent=00-\(traceID)-\(invocation.spanID)-01")
    }

    /// A mirrored copy and an injected delay are spans of the request's trace too.
    func testMirrorAndFaultDelaySpans() throws {
        let shadow = try TestUpstream(name: "shadow")
        defer { shadow.stop() }
        gateway = try PorticoProcess(config: """
            \(tracing())
            services:
              backend: { endpoints: [\(upstream.address)] }
              shadow: { endpoints: [\(shadow.address)] }
            routes:
              - name: api
                match: { prefix: / }
                service: backend
                mirror: { service: shadow }
                fault: { delay: { percent: 100, duration: 50ms } }
            """)
        let traceID = newTraceID()
        XCTAssertEqual(try Curl.run(["-H", parent(traceID), "\(gateway.http)/a"]).status, 200)
        let spans = collector.trace(traceID) { $0.count >= 4 }
        let server = try XCTUnwrap(spans.first { $0.kind == 2 }, "\(spans)")
        let delay = try XCTUnwrap(spans.first { $0.name == "fault delay" }, "\(spans)")
        XCTAssertEqual(delay.parentSpanID, server.spanID)
        XCTAssertGreaterThanOrEqual(delay.end - delay.start, 45_000_000)
        let mirror = try XCTUnwrap(spans.first { $0.name == "GET mirror" }, "\(spans)")
        XCTAssertEqual(mirror.parentSpanID, server.spanID)
        XCTAssertEqual(mirror.int("server.port"), shadow.port)
        XCTAssertEqual(mirror.int("http.response.status_code"), 200)
        XCTAssertTrue(eventually { shadow.lastRequestHeaders.first(name: "traceparent") == "00-\(traceID)-\(mirror.spanID)-01" },
                      "the shadow gets the mirror span as its parent")
    }

    /// New traces are sampled by ratio (within a binomial tolerance); a parent's decision is
    /// followed both ways, and an unsampled trace still reaches the upstream, marked so.
    func testSamplingRatioAndParentDecision() throws {
        gateway = try PorticoProcess(config: """
            \(tracing(ratio: "0.25"))
            \(apiRoute)
            """)
        let requests = 800
        let curlConfig = FileManager.default.temporaryDirectory.appendingPathComponent("curl-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: curlConfig) }
        try (0..<requests).map { "url = \"\(gateway.http)/ratio/\($0)\"\noutput = /dev/null\n" }.joined()
            .write(to: curlConfig, atomically: true, encoding: .utf8)
        XCTAssertEqual(try Curl.run(["--config", curlConfig.path], timeout: 120).exitCode, 0)
        // Sampled ones are exported within the export interval; wait until the count settles.
        var sampled = 0
        _ = eventually(timeout: 10) {
            let now = self.collector.spans().filter { $0.kind == 2 && ($0.string("url.path") ?? "").hasPrefix("/ratio/") }.count
            defer { sampled = now }
            return now == sampled && now > 0
        }
        // 800 × 0.25 = 200, standard deviation 12.2: ±5 of them.
        XCTAssertTrue((139...261).contains(sampled), "\(sampled) of \(requests) sampled at 0.25")

        // A sampled parent is followed: every one of these is recorded.
        let followed = (0..<20).map { _ in newTraceID() }
        for traceID in followed { _ = try Curl.run(["-H", parent(traceID), "\(gateway.http)/followed"]) }
        // An unsampled parent too: none is, and the upstream is told "not sampled".
        let dropped = newTraceID()
        let response = try Curl.run(["-H", parent(dropped, sampled: false), "\(gateway.http)/dropped"])
        XCTAssertTrue(response.body.contains("traceparent: 00-\(dropped)-"), response.body)
        XCTAssertTrue(response.body.contains("-00\n"), "the upstream is told the trace is not sampled: \(response.body)")
        XCTAssertTrue(eventually { Set(self.collector.spans().map(\.traceID)).isSuperset(of: followed) })
        XCTAssertTrue(collector.spans().allSatisfy { $0.traceID != dropped }, "an unsampled parent's trace is not exported")
    }

    /// `alwaysSampleErrors`: with a ratio of 0, only the failed request is exported.
    func testErrorsAreSampledWhenAsked() throws {
        gateway = try PorticoProcess(config: """
            \(tracing(ratio: "0", extra: ", alwaysSampleErrors: true"))
            \(apiRoute)
            """)
        for index in 0..<20 { XCTAssertEqual(try Curl.run(["\(gateway.http)/ok/\(index)"]).status, 200) }
        XCTAssertEqual(try Curl.run(["\(gateway.http)/status/502"]).status, 502)
        XCTAssertTrue(eventually { self.collector.spans().contains { $0.string("url.path") == "/status/502" } })
        let servers = collector.spans().filter { $0.kind == 2 }
        XCTAssertEqual(servers.map { $0.string("url.path") }, ["/status/502"], "only the failure is exported")
        XCTAssertEqual(servers.first?.statusCode, 2)
        XCTAssertEqual(servers.first?.string("error.type"), "502")
    }

    /// With the collector down, requests are served as fast as ever and spans are dropped and
    /// counted; when it comes up, spans flow again.
    func testCollectorDownCostsRequestsNothing() throws {
        let port = collector.port
        collector.stop()
        gateway = try PorticoProcess(config: """
            \(tracing("http://127.0.0.1:\(port)/v1/traces"))
            \(apiRoute)
            """)
        let started = Date()
        for index in 0..<200 { XCTAssertEqual(try Curl.run(["\(gateway.http)/down/\(index)"]).status, 200) }
        XCTAssertLessThan(Date().timeIntervalSince(started), 60, "requests are not held up by the exporter")
        XCTAssertTrue(eventually {
            let metrics = (try? Curl.run(["\(self.gateway.admin)/metrics"]).body) ?? ""
            return Self.value(of: "portico_trace_spans_dropped_total{reason=\"export_failed\"}", in: metrics) > 0
        }, "dropped spans are counted")

        collector = try OTLPCollector(port: port)
        let traceID = newTraceID()
        XCTAssertTrue(eventually(timeout: 20) {
            _ = try? Curl.run(["-H", self.parent(traceID), "\(self.gateway.http)/up"])
            return self.collector.spans().contains { $0.traceID == traceID }
        }, "spans flow again once the collector is up")
        let metrics = try Curl.run(["\(gateway.admin)/metrics"]).body
        XCTAssertGreaterThan(Self.value(of: "portico_trace_spans_exported_total", in: metrics), 0)
    }

    /// An HTTP/2 request (h2c) is traced the same way; its span says so.
    func testHTTP2RequestSpan() throws {
        gateway = try PorticoProcess(config: """
            \(tracing())
            \(apiRoute)
            """)
        let traceID = newTraceID()
        let response = try Curl.run(["--http2-prior-knowledge", "-H", parent(traceID), "\(gateway.http)/h2"])
        XCTAssertEqual(response.status, 200)
        XCTAssertEqual(response.httpVersion, "2")
        let spans = collector.trace(traceID) { $0.count >= 2 }
        let server = try XCTUnwrap(spans.first { $0.kind == 2 }, "\(spans)")
        XCTAssertEqual(server.string("network.protocol.version"), "2")
        let upstreamTry = try XCTUnwrap(spans.first { $0.kind == 3 }, "\(spans)")
        XCTAssertTrue(response.body.contains("traceparent: 00-\(traceID)-\(upstreamTry.spanID)-01"), response.body)
    }

    /// A reload turns tracing off (`traceparent` then passes through untouched, and the log
    /// line has no trace id) and on again (spans flow to the collector once more).
    func testReloadTurnsTracingOffAndOn() throws {
        let routes = """
            services:
              backend: { endpoints: [\(upstream.address)] }
            routes:
              - name: api
                match: { prefix: / }
                service: backend
            """
        gateway = try PorticoProcess(config: tracing() + "\n" + routes)
        let before = newTraceID()
        XCTAssertEqual(try Curl.run(["-H", parent(before), "\(gateway.http)/on"]).status, 200)
        XCTAssertFalse(collector.trace(before) { !$0.isEmpty }.isEmpty, "traced while on")

        try gateway.writeConfig(routes)
        XCTAssertEqual(try Curl.run(["-X", "POST", "\(gateway.admin)/reload"]).status, 200)
        let off = newTraceID()
        let response = try Curl.run(["-H", parent(off, span: "1111111111111111"), "\(gateway.http)/off"])
        XCTAssertTrue(response.body.contains("traceparent: 00-\(off)-1111111111111111-01"), response.body)
        XCTAssertTrue(eventually { self.gateway.stdout.contains("\"uri\":\"/off\"") })
        let offLine = gateway.stdout.split(separator: "\n").first { $0.contains("\"uri\":\"/off\"") } ?? ""
        XCTAssertFalse(offLine.contains("trace_id"), String(offLine))

        try gateway.writeConfig(tracing() + "\n" + routes)
        XCTAssertEqual(try Curl.run(["-X", "POST", "\(gateway.admin)/reload"]).status, 200)
        let again = newTraceID()
        XCTAssertEqual(try Curl.run(["-H", parent(again), "\(gateway.http)/again"]).status, 200)
        XCTAssertFalse(collector.trace(again) { !$0.isEmpty }.isEmpty, "traced again once back on")
        XCTAssertTrue(collector.spans().allSatisfy { $0.traceID != off }, "nothing recorded while off")
    }

    static func value(of series: String, in metrics: String) -> Double {
        for line in metrics.split(separator: "\n") where line.hasPrefix(series + " ") {
            return Double(line.split(separator: " ").last ?? "") ?? 0
        }
        return 0
    }
}
