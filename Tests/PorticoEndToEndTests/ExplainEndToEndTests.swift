import Foundation
import JWTTestSupport
import XCTest

/// `portico explain` as a child process on a config file with a local JWKS, and admin `POST
/// /explain` on a running gateway with curl; the upstream counts requests, and explaining
/// must not send it any.
final class ExplainEndToEndTests: GatewayTestCase {
    let issuer = "https://auth.example.com"
    var mint: TokenMint!
    var folder: URL!

    override func setUp() async throws {
        try await super.setUp()
        mint = TokenMint()
        try await mint.addKey(kid: "rsa-1", algorithm: "RS256")
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("portico-explain-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    }

    override func tearDown() {
        super.tearDown()
        try? FileManager.default.removeItem(at: folder)
    }

    /// Routes and policies; `jwks` is the JWKS file's path.
    private func routes(jwks: String) -> String {
        """
        policies:
          users:
            jwt:
              issuer: \(issuer)
              audiences: [api]
              jwks: \(jwks)
          services-only:
            authorization:
              rules:
                - from: { principals: ["spiffe://example.org/orders"] }
        services:
          backend: { endpoints: [\(upstream.address)] }
          other: { endpoints: [127.0.0.1:1] }
        routes:
          - name: api
            match: { prefix: /api/ }
            service: backend
            policies: [users]
            retries: { attempts: 3, retryOn: [5xx] }
          - name: api-orders
            match: { prefix: /api/orders/ }
            service: other
          - name: beta
            match: { prefix: /beta/, headers: { x-beta: "yes" } }
            service: backend
          - name: mesh
            match: { prefix: /mesh/ }
            service: backend
            policies: [services-only]
          - name: shop
            match: { prefix: /shop/ }
            split: { backends: [{ service: backend, weight: 80 }, { service: other, weight: 20 }] }
          - name: echo
            match: { prefix: /fn/ }
            function: echo
        """
    }

    private func writeConfigFile() throws -> URL {
        let jwks = folder.appendingPathComponent("jwks.json")
        try mint.jwks().write(to: jwks, atomically: true, encoding: .utf8)
        let config = folder.appendingPathComponent("gateway.yaml")
        try ("""
            listeners:
              - name: public
                address: 127.0.0.1:\(try freePort())
            """ + "\n" + routes(jwks: jwks.path)).write(to: config, atomically: true, encoding: .utf8)
        return config
    }

    private func token(_ claims: [String: Any] = [:]) throws -> String {
        try mint.token(claims: TokenMint.claims(issuer: issuer, audience: "api", extra: claims))
    }

    private func explainCLI(_ config: URL, _ arguments: [String]) throws -> (status: Int32, output: String) {
        try runCommand(PorticoProcess.binary.path,
                       ["explain", "--config", config.path, "--functions", folder.appendingPathComponent("none").path] + arguments,
                       currentDirectory: folder)
    }

    private func json(_ text: String, file: StaticString = #filePath, line: UInt = #line) throws -> [String: Any] {
        try XCTUnwrap(JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any], text, file: file, line: line)
    }

    func testTheCLIExplainsAJWTRouteWithAndWithoutAToken() throws {
        let config = try writeConfigFile()

        let valid = try explainCLI(config, ["GET", "http://api.example.com/api/users", "-H", "Authorization: Bearer \(try token())",
                                            "--json"])
        XCTAssertEqual(valid.status, 0, valid.output)
        XCTAssertFalse(valid.output.contains("\\/"), "no escaped slashes")
        let explanation = try json(valid.output)
        XCTAssertEqual(explanation["normalizedPath"] as? String, "/api/users")
        XCTAssertEqual((explanation["route"] as? [String: Any])?["name"] as? String, "api")
        let layers = try XCTUnwrap(explanation["layers"] as? [[String: Any]])
        let jwt = try XCTUnwrap(layers.first { $0["layer"] as? String == "jwt" })
        let policy = try XCTUnwrap((jwt["policies"] as? [[String: Any]])?.first)
        XCTAssertEqual(policy["result"] as? String, "valid")
        XCTAssertEqual((policy["token"] as? [String: Any])?["subject"] as? String, "alice")
        XCTAssertEqual((explanation["result"] as? [String: Any])?["action"] as? String, "forward")
        let exchange = try XCTUnwrap(explanation["exchange"] as? [String: Any])
        XCTAssertEqual((exchange["retries"] as? [String: Any])?["attempts"] as? Int, 3)

        let missing = try explainCLI(config, ["GET", "http://api.example.com/api/users"])
        XCTAssertEqual(missing.status, 0, missing.output)
        XCTAssertTrue(missing.output.contains("policy users (line 5): missing"), missing.output)
        XCTAssertTrue(missing.output.contains("result: 401 from jwt: a token is required"), missing.output)

        let forged = try token() + "x"
        let invalid = try explainCLI(config, ["GET", "http://api.example.com/api/users", "-H", "authorization: Bearer \(forged)"])
        XCTAssertTrue(invalid.output.contains("policy users (line 5): invalid - bad_signature")
                      || invalid.output.contains("policy users (line 5): invalid - malformed"), invalid.output)
        XCTAssertTrue(invalid.output.contains("result: 401 from jwt: the token is invalid"), invalid.output)

        // The shadowed route, named with the route that takes its requests.
        XCTAssertTrue(missing.output.contains("api-orders"), missing.output)
        let orders = try explainCLI(config, ["GET", "http://api.example.com/api/orders/1", "--json"])
        let routes = try XCTUnwrap(try json(orders.output)["routes"] as? [[String: Any]])
        XCTAssertEqual(routes[1]["outcome"] as? String, "notReached")
        XCTAssertEqual(routes[1]["wouldMatch"] as? Bool, true)
        XCTAssertEqual((routes[1]["shadowedBy"] as? [String: Any])?["name"] as? String, "api")
        XCTAssertEqual(upstream.count(), 0, "explaining sends nothing upstream")
    }

    func testTheCLINamesTheHeaderThatFailedAndTheSplitWeights() throws {
        let config = try writeConfigFile()
        let beta = try explainCLI(config, ["GET", "http://api.example.com/beta/x", "-H", "X-Beta: no"])
        XCTAssertEqual(beta.status, 0, beta.output)
        XCTAssertTrue(beta.output.contains("no: header x-beta is \"no\", wants \"yes\""), beta.output)
        XCTAssertTrue(beta.output.contains("no route: 404"), beta.output)

        let shop = try explainCLI(config, ["GET", "http://api.example.com/shop/", "--json"])
        let split = try XCTUnwrap((try json(shop.output)["backend"] as? [String: Any])?["split"] as? [String: Any])
        XCTAssertEqual((split["sides"] as? [[String: Any]])?.map { $0["weight"] as? Int }, [80, 20])
        XCTAssertNil(split["chosen"])
        XCTAssertEqual(upstream.count(), 0)
    }

    func testTheCLIReadsAClientCertificateForAuthorization() throws {
        let config = try writeConfigFile()
        let certs = folder.appendingPathComponent("certs").path
        XCTAssertEqual(try runCommand(PorticoProcess.binary.path, ["certs", "init", "--dir", certs]).status, 0)
        let issued = try runCommand(PorticoProcess.binary.path,
                                    ["certs", "issue", "orders", "--spiffe", "spiffe://example.org/orders", "--dir", certs])
        XCTAssertEqual(issued.status, 0, issued.output)
        let allowed = try explainCLI(config, ["GET", "http://api.example.com/mesh/x", "--client-cert", certs + "/orders.pem", "--json"])
        let explanation = try json(allowed.output)
        XCTAssertEqual((explanation["request"] as? [String: Any])?["clientPrincipal"] as? String, "spiffe://example.org/orders")
        let layers = try XCTUnwrap(explanation["layers"] as? [[String: Any]])
        XCTAssertEqual(layers.first { $0["layer"] as? String == "authorization" }?["decision"] as? String, "proceed")

        let anonymous = try explainCLI(config, ["GET", "http://api.example.com/mesh/x"])
        XCTAssertTrue(anonymous.output.contains("result: 403 from authorization"), anonymous.output)
    }

    func testBadInputExitsWithStatusTwoAndSaysWhy() throws {
        let config = try writeConfigFile()
        for (arguments, message) in [
            (["GET", "ftp://example.com/x"], "must use http or https"),
            (["GET", "example.com/x"], "is neither http(s)://host/path nor /path"),
            (["GET", "/x", "-H", "NoColon"], "header 'NoColon' is not 'Name: value'"),
            (["GET", "/x", "--client-cert", folder.appendingPathComponent("missing.pem").path], "cannot read the client certificate"),
            (["GET", "/x", "--client-cert", config.path], "is not a PEM certificate"),
            (["GET", "/x", "--listener", "nope"], "no listener named 'nope'"),
        ] {
            let result = try explainCLI(config, arguments)
            XCTAssertEqual(result.status, 2, "\(arguments): \(result.output)")
            XCTAssertTrue(result.output.contains(message), "\(arguments): \(result.output)")
        }
    }

    func testAdminExplainUsesTheRunningGatewayAndSendsNothingUpstream() throws {
        let jwksName = "jwks.json"
        gateway = try PorticoProcess(config: routes(jwks: jwksName)) { root in
            try self.mint.jwks().write(to: root.appendingPathComponent(jwksName), atomically: true, encoding: .utf8)
            try self.writeFunction("echo", script: SecurityEndToEndTests.headerEchoWorker, in: root)
        }
        func explain(_ body: [String: Any]) throws -> Curl.Result {
            let data = try JSONSerialization.data(withJSONObject: body)
            return try Curl.run(["-X", "POST", "-H", "content-type: application/json", "--data-binary", "@-", "\(gateway.admin)/explain"],
                                stdin: data)
        }

        let valid = try explain(["method": "GET", "url": "\(gateway.http)/api/users",
                                 "headers": ["authorization": "Bearer \(try token())"]])
        XCTAssertEqual(valid.status, 200, valid.body)
        XCTAssertEqual(valid.header("content-type"), "application/json")
        XCTAssertFalse(valid.body.contains("\\/"))
        let explanation = try json(valid.body)
        XCTAssertEqual((explanation["request"] as? [String: Any])?["listener"] as? String, "public", "picked by the URL's port")
        XCTAssertEqual((explanation["result"] as? [String: Any])?["action"] as? String, "forward")
        let target = try XCTUnwrap(((explanation["backend"] as? [String: Any])?["targets"] as? [[String: Any]])?.first)
        XCTAssertEqual(target["name"] as? String, "backend")
        XCTAssertEqual((explanation["notes"] as? [String])?.count, 0, "live: health and workers are known")

        let missing = try explain(["method": "GET", "url": "\(gateway.http)/api/users", "headers": [String]()])
        let result = try XCTUnwrap(try json(missing.body)["result"] as? [String: Any])
        XCTAssertEqual(result["status"] as? Int, 401)
        XCTAssertEqual(upstream.count(), 0, "explaining sends nothing upstream")

        // The same request for real reaches the upstream: the counter would have seen one.
        XCTAssertEqual(try Curl.run(["-H", "authorization: Bearer \(try token())", "\(gateway.http)/api/users"]).status, 200)
        XCTAssertEqual(upstream.count(), 1)

        // A function: cold before any request, warm after one.
        let cold = try json(try explain(["method": "GET", "url": "\(gateway.http)/fn/x"]).body)
        let coldFunction = try XCTUnwrap((((cold["backend"] as? [String: Any])?["targets"] as? [[String: Any]])?.first)?["function"]
                                         as? [String: Any])
        XCTAssertNotNil(coldFunction["revision"] as? String)
        XCTAssertEqual(coldFunction["warmWorkers"] as? Int, 0, "\(coldFunction)")
        XCTAssertEqual(try Curl.run(["\(gateway.http)/fn/x"]).status, 200)
        XCTAssertTrue(eventually { self.gateway.readyWorkers("echo") > 0 })
        let warm = try json(try explain(["method": "GET", "url": "\(gateway.http)/fn/x"]).body)
        let warmFunction = try XCTUnwrap((((warm["backend"] as? [String: Any])?["targets"] as? [[String: Any]])?.first)?["function"]
                                         as? [String: Any])
        XCTAssertGreaterThan(warmFunction["warmWorkers"] as? Int ?? 0, 0, "\(warmFunction)")

        // Bad input: 400 with the reason, as JSON.
        for (body, message) in [("{\"method\": \"GET\"}", "'url' is missing"),
                                ("{\"method\": \"GET\", \"url\": \"ftp://x/\"}", "must use http or https"),
                                ("{\"method\": \"GET\", \"url\": \"/x\", \"headers\": [\"bad\"]}", "is not 'Name: value'"),
                                ("{\"method\": \"GET\", \"url\": \"/x\", \"clientCertificate\": \"nope\"}", "not a PEM certificate"),
                                ("not json", "the body is not")] {
            let answer = try Curl.run(["-X", "POST", "--data-binary", "@-", "\(gateway.admin)/explain"], stdin: Data(body.utf8))
            XCTAssertEqual(answer.status, 400, body)
            XCTAssertTrue((try json(answer.body)["error"] as? String)?.contains(message) == true, "\(body): \(answer.body)")
        }
        XCTAssertEqual(try Curl.run(["\(gateway.admin)/explain"]).status, 405)
        let huge = Data(repeating: UInt8(ascii: " "), count: 2 * 1024 * 1024)
        XCTAssertEqual(try Curl.run(["-X", "POST", "--data-binary", "@-", "\(gateway.admin)/explain"], stdin: huge).status, 413,
                       "the admin API holds at most 1 MiB of a body")
        XCTAssertEqual(upstream.count(), 1, "still only the real request")
    }

    func testAdminExplainShowsHealthAndEjectionOfTheRunningGateway() throws {
        // A second upstream for the checked service: its health checks are requests too, and
        // the test's own upstream must see none.
        let checked = try TestUpstream(name: "checked")
        defer { checked.stop() }
        let deadPort = try freePort()
        gateway = try PorticoProcess(config: """
            services:
              checked:
                endpoints: [\(checked.address), 127.0.0.1:\(deadPort)]
                healthCheck: { path: /healthz, interval: 100ms, timeout: 1s, unhealthyThreshold: 1, healthyThreshold: 1 }
                outlierDetection: { consecutiveGatewayErrors: 5 }
            routes:
              - name: checked
                match: { prefix: / }
                service: checked
            """)
        func service() throws -> [String: Any] {
            let body = try JSONSerialization.data(withJSONObject: ["method": "GET", "url": "\(gateway.http)/x"])
            let answer = try Curl.run(["-X", "POST", "--data-binary", "@-", "\(gateway.admin)/explain"], stdin: body)
            let explanation = try json(answer.body)
            let target = (((explanation["backend"] as? [String: Any])?["targets"] as? [[String: Any]])?.first)
            return try XCTUnwrap(target?["service"] as? [String: Any], answer.body)
        }
        XCTAssertTrue(eventually {
            let endpoints = (try? service())?["endpoints"] as? [[String: Any]] ?? []
            return endpoints.count == 2 && endpoints[1]["healthy"] as? Bool == false
        }, "the dead endpoint fails its checks")
        let explained = try service()
        let endpoints = try XCTUnwrap(explained["endpoints"] as? [[String: Any]])
        XCTAssertEqual(endpoints[0]["healthy"] as? Bool, true)
        XCTAssertEqual(endpoints[0]["ejected"] as? Bool, false)
        XCTAssertEqual(endpoints[1]["available"] as? Bool, false)
        XCTAssertEqual(explained["choice"] as? String, "\(checked.address), the only available endpoint")
        XCTAssertEqual(upstream.count(), 0)
    }
}
