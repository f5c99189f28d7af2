import Foundation
import JWTTestSupport
import XCTest

/// The metrics operators ask for (issue 18, section 2), read from a real gateway's `/metrics`
/// after real requests: why the gateway answered itself, request duration in OpenTelemetry's
/// shape, upstream connects, endpoint state, listener connections, TLS handshake failures and
/// reloads.
final class OperatorMetricsEndToEndTests: GatewayTestCase {
    let issuer = "https://auth.example.com"
    var mint: TokenMint!
    private var silent: Process?
    private var closer: Process?

    override func setUp() async throws {
        try await super.setUp()
        mint = TokenMint()
        try await mint.addKey(kid: "rsa-1", algorithm: "RS256")
    }

    override func tearDown() {
        silent?.terminate()
        closer?.terminate()
        super.tearDown()
    }

    /// A peer that reads a request and closes the connection without a word.
    private func startCloser(port: Int) throws -> Process {
        let peer = Process()
        peer.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        peer.arguments = ["-c", """
            import socket, time
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(('127.0.0.1', \(port)))
            s.listen(64)
            deadline = time.time() + 60
            # Gone within a minute even if the test that started it dies.
            s.settimeout(60)
            while time.time() < deadline:
                try:
                    c, _ = s.accept()
                except OSError:
                    break
                c.settimeout(2)
                try:
                    c.recv(65536)
                except OSError:
                    pass
                c.close()
            """]
        try peer.run()
        guard eventually({ (try? RawSocket(port: port, timeout: 1)) != nil }) else {
            peer.terminate()
            throw HarnessError.socket("the closing peer never listened on \(port)")
        }
        return peer
    }

    private func config(deadPort: Int, silentPort: Int, closerPort: Int = 1) -> String {
        """
        limits:
          maxRequestBody: 1024
        policies:
          auth:
            jwt: { issuer: \(issuer), audiences: [api], jwks: jwks.json }
          admins:
            authorization:
              rules:
                - when: { claims: { scope: admin } }
          one-per-minute:
            rateLimit: { requests: 1, per: 1m }
        services:
          backend: { endpoints: [\(upstream.address)] }
          narrow:
            endpoints: [\(upstream.address)]
            circuitBreaker: { maxConnections: 1, maxPendingRequests: 1 }
          dead:
            endpoints: [127.0.0.1:\(deadPort)]
            healthCheck: { path: /healthz, interval: 100ms, timeout: 1s, unhealthyThreshold: 1, healthyThreshold: 1 }
          stalled: { endpoints: [127.0.0.1:\(silentPort)] }
          closer: { endpoints: [127.0.0.1:\(closerPort)] }
        routes:
          - name: ok
            match: { prefix: /ok/ }
            service: backend
            rewrite: { prefix: / }
          - name: jwt
            match: { prefix: /jwt/ }
            service: backend
            policies: [auth]
          - name: authz
            match: { prefix: /authz/ }
            service: backend
            policies: [auth, admins]
          - name: limited
            match: { prefix: /limited/ }
            service: backend
            policies: [one-per-minute]
          - name: fault
            match: { prefix: /fault/ }
            service: backend
            fault: { abort: { percent: 100, status: 503 } }
          - name: dead
            match: { prefix: /dead/ }
            service: dead
          - name: stalled
            match: { prefix: /stalled/ }
            service: stalled
            timeout: 300ms
          - name: closer
            match: { prefix: /closer/ }
            service: closer
          - name: narrow
            match: { prefix: /narrow/ }
            service: narrow
            rewrite: { prefix: / }
          - name: ping
            match: { path: /ping }
            directResponse: { status: 200, body: "pong" }
        """
    }

    private func startGateway() throws {
        let deadPort = try freePort()
        let silentPort = try freePort()
        let closerPort = try freePort()
        silent = try SilentPeer.start(port: silentPort)
        closer = try startCloser(port: closerPort)
        // One event loop: the circuit breaker's limits are per loop.
        gateway = try PorticoProcess(config: config(deadPort: deadPort, silentPort: silentPort, closerPort: closerPort),
                                     extraArguments: ["--threads", "1"]) { root in
            try self.mint.jwks().write(to: root.appendingPathComponent("jwks.json"), atomically: true, encoding: .utf8)
        }
    }

    private func metrics() throws -> String {
        try Curl.run(["\(gateway.admin)/metrics"]).body
    }

    /// The value of the sample `series` (name and labels exactly as exposed), nil when absent.
    private func sample(_ series: String, in text: String) -> Double? {
        for line in text.split(separator: "\n") where line.hasPrefix(series + " ") {
            return Double(line.dropFirst(series.count + 1))
        }
        return nil
    }

    private func get(_ path: String, _ headers: [String] = []) throws -> Int {
        try Curl.run(headers.flatMap { ["-H", $0] } + ["\(gateway.http)\(path)"]).status
    }

    func testEveryLocalReplyIsCountedWithItsReason() throws {
        try startGateway()
        let valid = try mint.token(claims: TokenMint.claims(issuer: issuer, audience: "api"), kid: "rsa-1")

        XCTAssertEqual(try get("/ok/a"), 200)
        XCTAssertEqual(try get("/nowhere"), 404)
        XCTAssertEqual(try get("/jwt/a"), 401)
        XCTAssertEqual(try get("/jwt/a", ["authorization: Bearer not.a.token"]), 401)
        XCTAssertEqual(try get("/jwt/a", ["authorization: Bearer \(valid)"]), 200)
        XCTAssertEqual(try get("/authz/a", ["authorization: Bearer \(valid)"]), 403)
        XCTAssertEqual(try get("/limited/a"), 200)
        XCTAssertEqual(try get("/limited/a"), 429)
        XCTAssertEqual(try get("/fault/a"), 503)
        XCTAssertEqual(try get("/dead/a"), 502)
        XCTAssertEqual(try get("/stalled/a"), 504)
        XCTAssertEqual(try get("/closer/a"), 502)
        XCTAssertEqual(try get("/ping"), 200)
        let body = try bodyFile(2048)
        XCTAssertEqual(try Curl.run(["--data-binary", "@\(body)", "\(gateway.http)/ok/upload"]).status, 413)
        // No `Host`: the edge refuses it before routing.
        let noHost = try RawHTTP.request(port: gateway.httpPort, "GET /ok/a HTTP/1.1\r\n\r\n")
        XCTAssertEqual(noHost.status, 400)
        // Not a request line at all: the connection's parser refuses it before any route.
        let garbage = try RawHTTP.request(port: gateway.httpPort, "HELLO THERE\r\n\r\n")
        XCTAssertEqual(garbage.status, 400)

        // The circuit breaker: one slow request holds the only connection, one more waits for
        // it, and a third is refused at once (which of the two waits is the gateway's choice).
        let first = Statuses()
        first.start(curl: ["\(gateway.http)/narrow/slow/2000"])
        XCTAssertTrue(eventually { self.upstream.count() >= 4 })  // /ok/a, /jwt/a and /limited/a came before
        let others = Statuses()
        others.start(curl: ["\(gateway.http)/narrow/slow/2000"])
        others.start(curl: ["\(gateway.http)/narrow/slow/2000"])
        others.wait()
        first.wait()
        XCTAssertEqual(others.all.sorted(), [200, 503])

        let text = try metrics()
        let expected: [(route: String, status: Int, reason: String, count: Double)] = [
            ("-", 404, "no_route", 1),
            ("jwt", 401, "jwt_missing", 1),
            ("jwt", 401, "jwt_invalid", 1),
            ("authz", 403, "authz_denied", 1),
            ("limited", 429, "rate_limited", 1),
            ("fault", 503, "fault", 1),
            ("dead", 502, "upstream_connect_failed", 1),
            ("stalled", 504, "upstream_timeout", 1),
            ("closer", 502, "upstream_reset", 1),
            ("ping", 200, "direct_response", 1),
            ("-", 413, "body_too_large", 1),
            ("-", 400, "bad_request", 2),
            ("narrow", 503, "breaker_open", 1),
        ]
        for (route, status, reason, count) in expected {
            let series = "portico_local_replies_total{route=\"\(route)\",status=\"\(status)\",reason=\"\(reason)\"}"
            XCTAssertEqual(sample(series, in: text), count, "\(series) in:\n\(text)")
        }
        let localReplyLines = text.split(separator: "\n").filter { $0.hasPrefix("portico_local_replies_total{") }
        XCTAssertEqual(localReplyLines.count, expected.count, "a backend's answer is no local reply: \(localReplyLines)")

        // The access log says why too, and says nothing of it when the backend answered.
        XCTAssertTrue(eventually { self.gateway.stdout.contains("\"local_reply\":\"jwt_invalid\"") }, gateway.stdout)
        let lines = gateway.stdout.split(separator: "\n")
        let served = lines.first { $0.contains("\"uri\":\"/ok/a\"") && $0.contains("\"status\":200") }
        XCTAssertNotNil(served, gateway.stdout)
        XCTAssertFalse(served?.contains("local_reply") ?? true, String(served ?? ""))
        let refused = lines.first { $0.contains("\"uri\":\"/nowhere\"") }
        XCTAssertTrue(refused?.contains("\"local_reply\":\"no_route\"") ?? false, String(refused ?? ""))
    }

    func testRequestDurationInTheOpenTelemetryShapeByRouteStatusClassAndProtocol() throws {
        try startGateway()
        XCTAssertEqual(try get("/ok/a"), 200)
        XCTAssertEqual(try get("/ok/status/500"), 500)
        XCTAssertEqual(try get("/ok/status/503"), 503)
        let overHTTP2 = try Curl.run(["--http2-prior-knowledge", "\(gateway.http)/ok/b"])
        XCTAssertEqual(overHTTP2.status, 200)
        XCTAssertEqual(overHTTP2.httpVersion, "2")

        let text = try metrics()
        let name = "http_server_request_duration_seconds"
        func labels(_ route: String, _ statusClass: String, _ version: String) -> String {
            "{http_route=\"\(route)\",http_response_status_class=\"\(statusClass)\",network_protocol_version=\"\(version)\""
        }
        XCTAssertEqual(sample(name + "_count" + labels("ok", "2xx", "1.1") + "}", in: text), 1, text)
        XCTAssertEqual(sample(name + "_count" + labels("ok", "5xx", "1.1") + "}", in: text), 2, text)
        XCTAssertEqual(sample(name + "_count" + labels("ok", "2xx", "2") + "}", in: text), 1, text)
        // OpenTelemetry's recommended boundaries, in seconds, from 5 ms to 10 s.
        for boundary in ["0.005", "0.075", "0.75", "2.5", "7.5", "10.0", "+Inf"] {
            XCTAssertNotNil(sample(name + "_bucket" + labels("ok", "2xx", "1.1") + ",le=\"\(boundary)\"}", in: text),
                            "bucket \(boundary) in:\n\(text)")
        }
        XCTAssertTrue(text.contains("# TYPE \(name) histogram"), text)
    }

    func testUpstreamConnectsAndEndpointStatesPerService() throws {
        try startGateway()
        XCTAssertEqual(try get("/ok/a"), 200)
        XCTAssertEqual(try get("/ok/b"), 200)
        XCTAssertEqual(try get("/dead/a"), 502)
        XCTAssertEqual(try get("/stalled/a"), 504)

        XCTAssertTrue(eventually {
            let text = (try? self.metrics()) ?? ""
            return self.sample("portico_upstream_endpoint_healthy{service=\"dead\",endpoint=\"\(self.deadEndpoint(text))\"}",
                               in: text) == 0
        }, "the dead endpoint fails its health check: \((try? metrics()) ?? "")")
        let text = try metrics()
        // One keep-alive connection served both requests.
        XCTAssertEqual(sample("portico_upstream_connect_attempts_total{service=\"backend\"}", in: text), 1, text)
        XCTAssertEqual(sample("portico_upstream_connect_duration_seconds_count{service=\"backend\"}", in: text), 1, text)
        XCTAssertNil(sample("portico_upstream_connect_failures_total{service=\"backend\",reason=\"refused\"}", in: text))
        // Refused at once (the gateway tries a refusing endpoint more than once before it gives up).
        let deadAttempts = try XCTUnwrap(sample("portico_upstream_connect_attempts_total{service=\"dead\"}", in: text), text)
        XCTAssertGreaterThanOrEqual(deadAttempts, 1)
        XCTAssertEqual(sample("portico_upstream_connect_failures_total{service=\"dead\",reason=\"refused\"}", in: text),
                       deadAttempts, text)
        // The silent peer accepts: a connect that succeeds, then no answer.
        XCTAssertEqual(sample("portico_upstream_connect_attempts_total{service=\"stalled\"}", in: text), 1, text)
        XCTAssertEqual(sample("portico_upstream_endpoint_healthy{service=\"backend\",endpoint=\"\(upstream.address)\"}", in: text),
                       1, text)
        XCTAssertEqual(sample("portico_upstream_endpoint_ejected{service=\"backend\",endpoint=\"\(upstream.address)\"}", in: text),
                       0, text)
    }

    private func deadEndpoint(_ text: String) -> String {
        // The dead service's one endpoint, as its gauge names it.
        let prefix = "portico_upstream_endpoint_healthy{service=\"dead\",endpoint=\""
        guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix(prefix) }) else { return "?" }
        return String(line.dropFirst(prefix.count).prefix { $0 != "\"" })
    }

    func testListenerConnectionsAndTLSHandshakeFailures() throws {
        try startGateway()
        do {
            // Open until the end of this scope, which closes it.
            let open = try RawSocket(port: gateway.httpPort)
            XCTAssertTrue(eventually {
                self.sample("portico_listener_active_connections{listener=\"public\"}", in: (try? self.metrics()) ?? "") == 1
            }, (try? metrics()) ?? "")
            withExtendedLifetime(open) {}
        }

        // curl does not trust the development CA unless told to: it refuses the listener's
        // certificate with an `unknown_ca` alert (over TLS 1.2, where the alert can be read).
        let untrusted = try Curl.run(["--tls-max", "1.2", "\(gateway.https)/ping"])
        XCTAssertNotEqual(untrusted.exitCode, 0)
        // Plain HTTP to the TLS port.
        XCTAssertEqual(try Curl.run(["http://127.0.0.1:\(gateway.tlsPort)/ping"]).status, 0)
        // TLS 1.1, which the listener does not speak.
        let old = try runCommand("/bin/sh", ["-c", "openssl s_client -connect 127.0.0.1:\(gateway.tlsPort) -tls1_1 </dev/null"])
        XCTAssertNotEqual(old.status, 0, old.output)
        XCTAssertEqual(try Curl.run(["--cacert", gateway.certificateAuthority, "\(gateway.https)/ping"]).status, 200)

        func failures(_ reason: String, _ text: String) -> Double? {
            sample("portico_tls_handshake_failures_total{listener=\"public-tls\",reason=\"\(reason)\"}", in: text)
        }
        XCTAssertTrue(eventually {
            let text = (try? self.metrics()) ?? ""
            return failures("unknown_ca", text) == 1 && failures("http_request", text) == 1
                && failures("protocol_version", text) == 1
                && self.sample("portico_listener_active_connections{listener=\"public\"}", in: text) == 0
        }, (try? metrics()) ?? "")
        let text = try metrics()
        XCTAssertNil(failures("other", text), "every failure here has its reason: \(text)")
        XCTAssertNil(sample("portico_tls_handshake_failures_total{listener=\"public\",reason=\"other\"}", in: text))
    }

    func testMutualTLSHandshakeFailuresSayWhetherTheCertificateWasMissingOrRefused() throws {
        func makeCertificates(_ root: URL) throws {
            let binary = PorticoProcess.binary.path
            let dir = root.appendingPathComponent("certs").path
            for arguments in [
                ["certs", "init", "--dir", dir],
                ["certs", "issue", "gateway", "--dns", "localhost", "--ip", "127.0.0.1", "--dir", dir],
                ["certs", "issue", "orders", "--dir", dir],
                ["certs", "init", "--dir", dir + "/other"],
                ["certs", "issue", "orders", "--dir", dir + "/other"],
            ] {
                let result = try runCommand(binary, arguments)
                XCTAssertEqual(result.status, 0, result.output)
            }
        }
        gateway = try PorticoProcess(
            config: "routes:\n  - name: ping\n    match: { path: /ping }\n    directResponse: { status: 200 }\n",
            tlsOptions: ["clientCA": "certs/ca.pem", "mode": "strict"], prepare: makeCertificates)
        let certs = gateway.directory.appendingPathComponent("certs").path
        let trusted = ["--cacert", "\(certs)/ca.pem"]
        XCTAssertEqual(try Curl.run(trusted + ["--cert", "\(certs)/orders.pem", "--key", "\(certs)/orders-key.pem",
                                               "\(gateway.https)/ping"]).status, 200)
        XCTAssertEqual(try Curl.run(trusted + ["\(gateway.https)/ping"]).status, 0, "no certificate")
        XCTAssertEqual(try Curl.run(trusted + ["--cert", "\(certs)/other/orders.pem", "--key", "\(certs)/other/orders-key.pem",
                                               "\(gateway.https)/ping"]).status, 0, "a stranger's certificate")
        XCTAssertTrue(eventually {
            let text = (try? self.metrics()) ?? ""
            return self.sample("portico_tls_handshake_failures_total{listener=\"public-tls\",reason=\"no_certificate\"}",
                               in: text) == 1
                && self.sample("portico_tls_handshake_failures_total{listener=\"public-tls\",reason=\"bad_certificate\"}",
                               in: text) == 1
        }, (try? metrics()) ?? "")
    }

    func testConfigGenerationReloadTimeAndReloadsByResult() throws {
        let before = Date().timeIntervalSince1970
        try startGateway()
        var text = try metrics()
        XCTAssertEqual(sample("portico_config_generation", in: text), 1, text)
        XCTAssertEqual(sample("portico_config_reloads_total{result=\"success\"}", in: text), 0, text)
        XCTAssertEqual(sample("portico_config_reloads_total{result=\"failure\"}", in: text), 0, text)
        let started = try XCTUnwrap(sample("portico_config_last_reload_success_timestamp_seconds", in: text), text)
        XCTAssertGreaterThanOrEqual(started, before.rounded(.down))

        let reload = try Curl.run(["-X", "POST", "\(gateway.admin)/reload"])
        XCTAssertEqual(reload.status, 200, reload.body)
        let answer = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(reload.body.utf8)) as? [String: Any])
        XCTAssertEqual(answer["reloaded"] as? Bool, true)
        XCTAssertEqual(answer["generation"] as? Int, 2)
        text = try metrics()
        XCTAssertEqual(sample("portico_config_generation", in: text), 2, text)
        XCTAssertEqual(sample("portico_config_reloads_total{result=\"success\"}", in: text), 1, text)
        XCTAssertGreaterThanOrEqual(try XCTUnwrap(sample("portico_config_last_reload_success_timestamp_seconds", in: text)),
                                    started)

        try gateway.writeConfig("routes:\n  - name: broken\n    match: { prefix: /x/ }\n    service: nowhere\n")
        let refused = try Curl.run(["-X", "POST", "\(gateway.admin)/reload"])
        XCTAssertEqual(refused.status, 400)
        XCTAssertFalse(refused.body.contains("\\/"), "no escaped slashes: \(refused.body)")
        text = try metrics()
        XCTAssertEqual(sample("portico_config_reloads_total{result=\"failure\"}", in: text), 1, text)
        XCTAssertEqual(sample("portico_config_generation", in: text), 2, "the running config keeps serving")
    }

    func testRoutesAndServicesAreStructuredJSONWithoutEscapedSlashes() throws {
        try startGateway()
        let routes = try Curl.run(["\(gateway.admin)/routes"])
        XCTAssertEqual(routes.status, 200)
        XCTAssertFalse(routes.body.contains("\\/"), routes.body)
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(routes.body.utf8)) as? [String: Any])
        XCTAssertEqual(object["generation"] as? Int, 1)
        let list = try XCTUnwrap(object["routes"] as? [[String: Any]])
        XCTAssertEqual(list.map { $0["name"] as? String },
                       ["ok", "jwt", "authz", "limited", "fault", "dead", "stalled", "closer", "narrow", "ping"])
        let authz = list[2]
        XCTAssertEqual(authz["index"] as? Int, 2)
        XCTAssertEqual((authz["match"] as? [String: Any])?["prefix"] as? String, "/authz/")
        XCTAssertEqual(authz["action"] as? [String: String], ["kind": "service", "service": "backend"])
        XCTAssertEqual(authz["policies"] as? [String], ["auth", "admins"])
        XCTAssertEqual(authz["timeout"] as? String, "15s")
        XCTAssertEqual(authz["file"] as? String, gateway.configURL.path)
        let line = try XCTUnwrap(authz["line"] as? Int)
        let configLines = try String(contentsOf: gateway.configURL, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false)
        XCTAssertTrue(configLines[line - 1].contains("name: authz"), "line \(line): \(configLines[line - 1])")
        let fault = try XCTUnwrap(list[4]["fault"] as? [String: Any])
        XCTAssertEqual((fault["abort"] as? [String: Any])?["status"] as? Int, 503)
        let ping = list[9]
        XCTAssertEqual((ping["action"] as? [String: Any])?["kind"] as? String, "directResponse")
        XCTAssertEqual(((ping["action"] as? [String: Any])?["directResponse"] as? [String: Any])?["status"] as? Int, 200)
        XCTAssertNil(ping["timeout"], "a route that answers itself has no upstream timeout")

        let services = try Curl.run(["\(gateway.admin)/services"])
        XCTAssertFalse(services.body.contains("\\/"), services.body)
        let serviceList = try XCTUnwrap((JSONSerialization.jsonObject(with: Data(services.body.utf8)) as? [String: Any])?["services"]
            as? [[String: Any]])
        XCTAssertEqual(serviceList.map { $0["name"] as? String }, ["backend", "narrow", "dead", "stalled", "closer"])
        let endpoint = try XCTUnwrap((serviceList[0]["endpoints"] as? [[String: Any]])?.first)
        XCTAssertEqual(endpoint["address"] as? String, upstream.address)
    }
}
