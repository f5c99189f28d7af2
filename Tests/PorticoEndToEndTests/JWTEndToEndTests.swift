import Foundation
import JWTTestSupport
import XCTest

/// JWT authentication and claim-based authorization through the real binary, with tokens
/// signed by keys the test generates and published in a JWKS file or at a JWKS URL.
final class JWTEndToEndTests: GatewayTestCase {
    let issuer = "https://auth.example.com"
    var mint: TokenMint!

    override func setUp() async throws {
        try await super.setUp()
        mint = TokenMint()
        try await mint.addKey(kid: "rsa-1", algorithm: "RS256")
        try await mint.addKey(kid: "ec-1", algorithm: "ES256")
        try await mint.addKey(kid: "ed-1", algorithm: "EdDSA")
    }

    private func config(jwks: String = "jwks: jwks.json", extraPolicy: String = "") -> String {
        """
        policies:
          public-jwt:
            jwt:
              issuer: \(issuer)
              audiences: [api]
              \(jwks)
              forwardHeader: x-jwt-payload
              claimToHeaders: [{ claim: sub, header: x-user }]
              minRefreshInterval: 1s
          admins:
            authorization:
              rules:
                - when: { claims: { scope: admin } }
                - to: { methods: [GET], paths: ["*/public"] }
        \(extraPolicy)
        services:
          backend: { endpoints: [\(upstream.address)] }
        routes:
          - name: service
            match: { prefix: /service/ }
            service: backend
            policies: [public-jwt]
          - name: function
            match: { prefix: /function/ }
            function: echo
            policies: [public-jwt]
          - name: admin-service
            match: { prefix: /admin/service/ }
            service: backend
            policies: [public-jwt, admins]
          - name: admin-function
            match: { prefix: /admin/function/ }
            function: echo
            policies: [public-jwt, admins]
        """
    }

    private func prepare(_ root: URL) throws {
        try mint.jwks().write(to: root.appendingPathComponent("jwks.json"), atomically: true, encoding: .utf8)
        try writeFunction("echo", script: SecurityEndToEndTests.headerEchoWorker, in: root)
    }

    private func claims(_ extra: [String: Any] = [:]) -> [String: Any] {
        TokenMint.claims(issuer: issuer, audience: "api", extra: extra)
    }

    private func get(_ path: String, token: String?) throws -> Curl.Result {
        try Curl.run((token.map { ["-H", "authorization: Bearer \($0)"] } ?? []) + ["\(gateway.http)\(path)"])
    }

    func testValidTokensPassAndReachTheBackendWithClaimsNotTheToken() throws {
        gateway = try PorticoProcess(config: config(), prepare: prepare)
        for kid in ["rsa-1", "ec-1", "ed-1"] {
            let token = try mint.token(claims: claims(), kid: kid)
            let response = try get("/service/a", token: token)
            XCTAssertEqual(response.status, 200, kid)
            let seen = upstream.lastRequestHeaders
            XCTAssertNil(seen.first(name: "authorization"), "the token stays at the gateway")
            XCTAssertEqual(seen.first(name: "x-user"), "alice")
            XCTAssertEqual(seen.first(name: "x-jwt-payload"), String(token.split(separator: ".")[1]))

            let viaFunction = try get("/function/a", token: token)
            XCTAssertEqual(viaFunction.status, 200, kid)
            XCTAssertTrue(viaFunction.body.contains("x-user: alice"), viaFunction.body)
            XCTAssertFalse(viaFunction.body.contains("authorization:"), viaFunction.body)
        }
        // A spoofed claim header is overwritten with the verified claim.
        let token = try mint.token(claims: claims())
        XCTAssertEqual(try Curl.run(["-H", "authorization: Bearer \(token)", "-H", "x-user: root", "\(gateway.http)/service/a"]).status, 200)
        XCTAssertEqual(upstream.lastRequestHeaders[canonicalForm: "x-user"], ["alice"])
    }

    /// A claim is the issuer's text: one that cannot be a field value (a control byte) is left
    /// out of the upstream request, which still goes through, rather than sent and refused by
    /// the upstream writer (which closed the connection and counted a failure of the endpoint).
    func testAClaimThatCannotBeAFieldValueIsLeftOut() throws {
        gateway = try PorticoProcess(config: config(), prepare: prepare)
        let token = try mint.token(claims: claims(["sub": "ali\u{1}ce"]))
        let response = try get("/service/a", token: token)
        XCTAssertEqual(response.status, 200, response.body)
        XCTAssertNil(upstream.lastRequestHeaders.first(name: "x-user"))
        XCTAssertNotNil(upstream.lastRequestHeaders.first(name: "x-jwt-payload"), "the rest of the token's output is there")
    }

    func testEveryRejectionIs401WithoutDetailOnServiceAndFunctionRoutes() throws {
        gateway = try PorticoProcess(config: config(), prepare: prepare)
        let now = Int(Date().timeIntervalSince1970)
        let rsaJWK = mint.keys[0].jwk
        let hmacInput = String(TokenMint.unsignedToken(claims: claims(), header: ["alg": "HS256", "kid": "rsa-1"]).dropLast())
        let hmac = HMACSigner.sign(key: Data((rsaJWK["n"]! + rsaJWK["e"]!).utf8), message: hmacInput)
        let valid = try mint.token(claims: claims())
        let cases: [(reason: String, token: String?)] = [
            ("missing", nil),
            ("expired", try mint.token(claims: claims(["exp": now - 3600]))),
            ("not_yet_valid", try mint.token(claims: claims(["nbf": now + 3600]))),
            ("issuer", try mint.token(claims: claims(["iss": "https://evil.example.com"]))),
            ("audience", try mint.token(claims: claims(["aud": "someone-else"]))),
            ("unsupported_algorithm", TokenMint.unsignedToken(claims: claims(), header: ["alg": "none", "kid": "rsa-1"])),
            ("unsupported_algorithm", hmacInput + "." + hmac),
            ("unknown_kid", try mint.token(claims: claims(), header: ["kid": "not-in-the-set"])),
            ("bad_signature", String(valid.dropLast(4)) + (valid.hasSuffix("AAAA") ? "BBBB" : "AAAA")),
            ("malformed", "not.a.jwt"),
            ("malformed", "garbage"),
        ]
        for (index, testCase) in cases.enumerated() {
            for route in ["/service/x", "/function/x"] {
                let response = try get(route, token: testCase.token)
                XCTAssertEqual(response.status, 401, "\(testCase.reason) #\(index) on \(route)")
                XCTAssertEqual(response.header("www-authenticate"), "Bearer", testCase.reason)
                XCTAssertFalse(response.body.lowercased().contains(testCase.reason.replacingOccurrences(of: "_", with: " ")),
                               "the reason is not told to the client: \(response.body)")
            }
        }
        XCTAssertEqual(upstream.count(), 0, "no refused request reaches the backend")
        XCTAssertTrue(Processes.matching(marker).isEmpty, "no refused request starts a function worker")
        let metrics = try Curl.run(["\(gateway.admin)/metrics"]).body
        for (reason, count) in [("missing", 2), ("expired", 2), ("unsupported_algorithm", 4), ("unknown_kid", 2),
                                ("bad_signature", 2), ("malformed", 4), ("issuer", 2), ("audience", 2), ("not_yet_valid", 2)] {
            XCTAssertTrue(metrics.contains("portico_authn_failures_total{policy=\"public-jwt\",reason=\"\(reason)\"} \(count)"),
                          "\(reason) \(count)\n\(metrics)")
        }
        XCTAssertTrue(metrics.contains(#"portico_requests_total{route="service",backend="authn",code="401"} 11"#), metrics)
    }

    /// The JWS details a lenient library lets through: each token here is really signed by a
    /// key of the set, and each is refused through the real binary.
    func testCriticalHeadersOtherSpellingsAndEncryptionKeysAre401() throws {
        gateway = try PorticoProcess(config: config(), prepare: { root in
            // ec-1 is published as an encryption key: it must not verify anything.
            try self.mint.jwks(amend: ["ec-1": ["use": "enc"]])
                .write(to: root.appendingPathComponent("jwks.json"), atomically: true, encoding: .utf8)
            try self.writeFunction("echo", script: SecurityEndToEndTests.headerEchoWorker, in: root)
        })
        var genuine = try mint.token(claims: claims(), kid: "ed-1")
        while !genuine.split(separator: ".")[2].contains(where: { $0 == "-" || $0 == "_" }) {
            genuine = try mint.token(claims: claims(), kid: "ed-1")
        }
        XCTAssertEqual(try get("/service/x", token: genuine).status, 200)
        let parts = genuine.split(separator: ".").map(String.init)
        let signedText = parts[0] + "." + parts[1] + "."
        let plusSlash = parts[2].replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
        let strayBits = String(parts[2].dropLast()) + String(alphabet[alphabet.firstIndex(of: parts[2].last!)! | 0x0F])
        let cases: [(reason: String, token: String)] = [
            ("unsupported_header", try mint.token(claims: claims(), kid: "rsa-1", extraHeader: ["crit": ["exp"], "exp": 1])),
            ("unsupported_header", try mint.token(claims: claims(), kid: "ed-1", extraHeader: ["crit": ["b64"], "b64": false])),
            ("malformed", signedText + parts[2] + "=="),
            ("malformed", signedText + plusSlash),
            ("malformed", signedText + strayBits),
            ("unknown_kid", try mint.token(claims: claims(), kid: "ec-1")),
        ]
        for (index, testCase) in cases.enumerated() {
            XCTAssertEqual(try get("/service/x", token: testCase.token).status, 401, "\(testCase.reason) #\(index)")
        }
        XCTAssertEqual(upstream.count(), 1, "only the genuine token reached the backend")
        let metrics = try Curl.run(["\(gateway.admin)/metrics"]).body
        for (reason, count) in [("unsupported_header", 2), ("malformed", 3), ("unknown_kid", 1)] {
            XCTAssertTrue(metrics.contains("portico_authn_failures_total{policy=\"public-jwt\",reason=\"\(reason)\"} \(count)"),
                          "\(reason) \(count)\n\(metrics)")
        }
    }

    func testClaimBasedAuthorization() throws {
        gateway = try PorticoProcess(config: config(), prepare: prepare)
        let admin = try mint.token(claims: claims(["scope": "admin"]))
        let reader = try mint.token(claims: claims(["scope": "read"]))
        for route in ["/admin/service/x", "/admin/function/x"] {
            XCTAssertEqual(try get(route, token: admin).status, 200, route)
            XCTAssertEqual(try get(route, token: reader).status, 403, route)
            XCTAssertEqual(try get(route + "/public", token: reader).status, 200, "the second rule allows \(route)/public")
            XCTAssertEqual(try get(route, token: nil).status, 401, "authentication comes before authorization")
        }
        let metrics = try Curl.run(["\(gateway.admin)/metrics"]).body
        XCTAssertTrue(metrics.contains(#"portico_authz_denied_total{policy="admins"} 2"#), metrics)
    }

    func testOptionalTokensAndSeveralIssuers() async throws {
        // A second issuer with its own keys, on the listener; the route keeps its own policy.
        let partner = TokenMint()
        try await partner.addKey(kid: "partner-1", algorithm: "ES256")
        let extra = """
              partner-jwt:
                jwt:
                  issuer: https://partner.example.com
                  jwks: partner.json
                  optional: true
                  claimToHeaders: [{ claim: sub, header: x-partner }]
            """
        gateway = try PorticoProcess(config: config(extraPolicy: extra), listenerPolicies: ["partner-jwt"]) { root in
            try self.prepare(root)
            try partner.jwks().write(to: root.appendingPathComponent("partner.json"), atomically: true, encoding: .utf8)
        }
        // Either issuer's token passes where both policies apply; each policy's own claims
        // headers are written, and a client's own copies of them never pass.
        let ours = try mint.token(claims: claims())
        let theirs = try partner.token(claims: TokenMint.claims(issuer: "https://partner.example.com", audience: "x", subject: "acme"))
        XCTAssertEqual(try Curl.run(["-H", "authorization: Bearer \(ours)", "-H", "x-partner: spoofed",
                                     "\(gateway.http)/service/a"]).status, 200)
        XCTAssertEqual(upstream.lastRequestHeaders.first(name: "x-user"), "alice")
        XCTAssertNil(upstream.lastRequestHeaders.first(name: "x-partner"))
        XCTAssertEqual(try get("/service/a", token: theirs).status, 200)
        XCTAssertEqual(upstream.lastRequestHeaders.first(name: "x-partner"), "acme")
        XCTAssertNil(upstream.lastRequestHeaders.first(name: "x-user"))
        XCTAssertEqual(try get("/function/a", token: theirs).status, 200)
        // The route's policy is not optional: no token is still 401 there.
        XCTAssertEqual(try get("/service/a", token: nil).status, 401)

        // A route that only the optional listener policy covers: no token passes, without
        // the spoofed claim header; a bad token does not.
        try gateway.writeConfig(config(extraPolicy: extra) + """

              - name: open
                match: { prefix: /open/ }
                service: backend
            """)
        XCTAssertEqual(try Curl.run(["-X", "POST", "\(gateway.admin)/reload"]).status, 200)
        XCTAssertEqual(try Curl.run(["-H", "x-partner: spoofed", "-H", "x-jwt-payload: e30", "\(gateway.http)/open/a"]).status, 200)
        XCTAssertNil(upstream.lastRequestHeaders.first(name: "x-partner"), "a client cannot claim a verified identity")
        XCTAssertEqual(try get("/open/a", token: "not.a.token").status, 401, "a token that is there must be valid")
    }

    func testTokensFromAnotherHeaderOrAQueryParameter() throws {
        let extra = """
              header-jwt:
                jwt: { issuer: \(issuer), jwks: jwks.json, from: { header: x-token }, forwardOriginalToken: true }
              query-jwt:
                jwt: { issuer: \(issuer), jwks: jwks.json, from: { query: access_token } }
            """
        gateway = try PorticoProcess(config: config(extraPolicy: extra) + """

              - name: by-header
                match: { prefix: /by-header/ }
                service: backend
                policies: [header-jwt]
              - name: by-query
                match: { prefix: /by-query/ }
                service: backend
                policies: [query-jwt]
              - name: by-query-function
                match: { prefix: /by-query-function/ }
                function: echo
                policies: [query-jwt]
            """, prepare: prepare)
        let token = try mint.token(claims: claims())
        XCTAssertEqual(try Curl.run(["-H", "x-token: \(token)", "\(gateway.http)/by-header/a"]).status, 200)
        XCTAssertEqual(upstream.lastRequestHeaders.first(name: "x-token"), token, "kept: forwardOriginalToken")
        XCTAssertEqual(try Curl.run(["-H", "authorization: Bearer \(token)", "\(gateway.http)/by-header/a"]).status, 401,
                       "only the configured header counts")
        let byQuery = try Curl.run(["\(gateway.http)/by-query/a?x=1&access_token=\(token)&y=2"])
        XCTAssertEqual(byQuery.status, 200)
        XCTAssertTrue(byQuery.body.hasPrefix("backend GET /by-query/a?x=1&y=2 "), "the token leaves the query: \(byQuery.body)")
        XCTAssertEqual(try Curl.run(["\(gateway.http)/by-query-function/a?access_token=\(token)"]).status, 200)
        XCTAssertEqual(try Curl.run(["\(gateway.http)/by-query/a?access_token=not.a.token"]).status, 401)
        XCTAssertEqual(try Curl.run(["\(gateway.http)/by-query/a"]).status, 401)
    }

    func testAnUnknownKidReloadsTheKeySetFile() async throws {
        gateway = try PorticoProcess(config: config(), prepare: prepare)
        try await mint.addKey(kid: "rsa-2", algorithm: "RS256")
        let token = try mint.token(claims: claims(), kid: "rsa-2")
        XCTAssertEqual(try get("/service/a", token: token).status, 401, "not published yet")
        try mint.jwks().write(to: gateway.directory.appendingPathComponent("jwks.json"), atomically: true, encoding: .utf8)
        XCTAssertTrue(eventually { (try? self.get("/service/a", token: token).status) == 200 },
                      "a token with a new kid makes the gateway read the key set again")
    }

    func testKeysFromAJWKSURL() throws {
        // A real HTTP server for the key set: Python's, serving a folder.
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("jwks-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        try mint.jwks().write(to: folder.appendingPathComponent("keys.json"), atomically: true, encoding: .utf8)
        let port = try freePort()
        let server = Process()
        server.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        server.arguments = ["-m", "http.server", String(port), "--bind", "127.0.0.1", "--directory", folder.path]
        server.standardOutput = FileHandle.nullDevice
        server.standardError = FileHandle.nullDevice
        try server.run()
        defer { server.terminate(); server.waitUntilExit() }
        XCTAssertTrue(eventually { (try? Curl.run(["http://127.0.0.1:\(port)/keys.json"]).status) == 200 })

        gateway = try PorticoProcess(config: config(jwks: "jwksUri: http://127.0.0.1:\(port)/keys.json"), prepare: prepare)
        XCTAssertEqual(try get("/service/a", token: try mint.token(claims: claims(), kid: "ec-1")).status, 200)
        XCTAssertEqual(try get("/function/a", token: try mint.token(claims: claims(), kid: "ed-1")).status, 200)
        XCTAssertEqual(try get("/service/a", token: nil).status, 401)
    }

    /// Reloads run one at a time, in the order asked (`ReloadService`): a reload that waits
    /// 1.5 s for its key set must not land after, and over, the newer reload asked meanwhile.
    func testASlowReloadDoesNotLandOverANewerOne() throws {
        func versioned(_ version: String, keys: String) -> String {
            """
            policies:
              keys:
                jwt: { issuer: \(issuer), audiences: [api], \(keys) }
            services:
              backend: { endpoints: [\(upstream.address)] }
            routes:
              - match: { path: /version }
                directResponse: { status: 200, body: "\(version)" }
              - match: { prefix: /service/ }
                service: backend
                policies: [keys]
            """
        }
        // A key-set server that answers after 1.5 s, and leaves a file behind once asked.
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("slow-jwks-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        try mint.jwks().write(to: folder.appendingPathComponent("keys.json"), atomically: true, encoding: .utf8)
        let asked = folder.appendingPathComponent("asked")
        let port = try freePort()
        let server = Process()
        server.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        server.arguments = ["-c", """
            import http.server, sys, time
            class Handler(http.server.BaseHTTPRequestHandler):
                def do_GET(self):
                    open(sys.argv[3], "a").write("x")
                    time.sleep(1.5)
                    body = open(sys.argv[2], "rb").read()
                    self.send_response(200)
                    self.send_header("content-length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                def log_message(self, *args):
                    pass
            http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
            """, String(port), folder.appendingPathComponent("keys.json").path, asked.path]
        try server.run()
        defer { server.terminate(); server.waitUntilExit() }
        XCTAssertTrue(eventually(timeout: 10) {
            (try? Curl.run(["http://127.0.0.1:\(port)/keys.json"], timeout: 5).status) == 200
        }, "the key-set server is up")
        try FileManager.default.removeItem(at: asked)

        gateway = try PorticoProcess(config: versioned("start", keys: "jwks: jwks.json"), prepare: prepare)
        try gateway.writeConfig(versioned("slow", keys: "jwksUri: http://127.0.0.1:\(port)/keys.json"))
        let admin = gateway.admin
        let slowDone = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var slow: Curl.Result?
        Thread.detachNewThread {
            slow = try? Curl.run(["-X", "POST", "\(admin)/reload"], timeout: 20)
            slowDone.signal()
        }
        XCTAssertTrue(eventually(timeout: 10) { FileManager.default.fileExists(atPath: asked.path) },
                      "the slow reload read its config and is fetching the key set")

        try gateway.writeConfig(versioned("newer", keys: "jwks: jwks.json"))
        let newer = try Curl.run(["-X", "POST", "\(admin)/reload"], timeout: 20)
        XCTAssertEqual(newer.status, 200, newer.body)
        XCTAssertEqual(slowDone.wait(timeout: .now() + 20), .success)
        XCTAssertEqual(slow?.status, 200, slow?.body ?? "no answer")
        XCTAssertEqual(try Curl.run(["\(gateway.http)/version"]).body, "newer", "the newer config serves, not the slow one")
    }

    func testAnUnreadableKeySetRejectsTheConfig() throws {
        gateway = try PorticoProcess(config: config(), prepare: prepare)
        try gateway.writeConfig(config(jwks: "jwks: missing.json"))
        let reload = try Curl.run(["-X", "POST", "\(gateway.admin)/reload"])
        XCTAssertEqual(reload.status, 400)
        XCTAssertTrue(reload.body.contains("policies.public-jwt.jwt"), reload.body)
        XCTAssertTrue(reload.body.contains("missing.json"), reload.body)
        XCTAssertEqual(try get("/service/a", token: try mint.token(claims: claims())).status, 200, "the last good config serves")
    }
}

import Crypto

enum HMACSigner {
    static func sign(key: Data, message: String) -> String {
        TokenMint.base64URL(Data(HMAC<SHA256>.authenticationCode(for: Data(message.utf8), using: SymmetricKey(data: key))))
    }
}
