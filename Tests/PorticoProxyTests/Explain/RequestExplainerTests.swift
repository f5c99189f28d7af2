import Foundation
import JWTTestSupport
import PorticoConfig
@testable import PorticoProxy
import XCTest

/// `RequestExplainer` on a config: the routes tried with the condition each failed, the layers
/// in `RequestPath`'s order with what jwt and authorization decide, and the backend chosen,
/// with nothing sent and nothing spent.
final class RequestExplainerTests: XCTestCase {
    let issuer = "https://auth.example.com"
    var mint: TokenMint!
    var folder: URL!

    override func setUp() async throws {
        mint = TokenMint()
        try await mint.addKey(kid: "ec-1", algorithm: "ES256")
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("explain-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        try mint.jwks().write(to: folder.appendingPathComponent("jwks.json"), atomically: true, encoding: .utf8)
    }

    override func tearDown() {
        try? FileManager.default.removeItem(at: folder)
    }

    private var yaml: String {
        """
        listeners:
          - name: public
            address: 127.0.0.1:8080
        policies:
          users:
            jwt:
              issuer: \(issuer)
              audiences: [api]
              jwks: \(folder.appendingPathComponent("jwks.json").path)
          admins:
            authorization:
              rules:
                - when: { claims: { scope: admin } }
          per-ip:
            rateLimit: { requests: 1, per: 1m, burst: 1 }
        services:
          api: { endpoints: [127.0.0.1:9001, 127.0.0.1:9002], loadBalancer: least_request }
          legacy: { endpoints: [127.0.0.1:9003] }
          shadow: { endpoints: [127.0.0.1:9004] }
        routes:
          - name: health
            match: { path: /healthz }
            directResponse: { status: 200, body: ok }
          - name: canary
            match: { prefix: /api/, headers: { x-canary: "true" } }
            service: legacy
          - name: api
            match: { prefix: /api/ }
            service: api
            policies: [users, per-ip]
            timeout: 3s
            retries: { attempts: 2, perTryTimeout: 1s, retryOn: [5xx, connect-failure] }
            mirror: { service: shadow, percent: 10 }
            rewrite: { prefix: /v2/ }
          - name: api-users
            match: { prefix: /api/users/ }
            service: legacy
          - name: admin
            match: { prefix: /admin/ }
            service: api
            policies: [users, admins]
          - name: split
            match: { prefix: /shop/ }
            split:
              backends: [{ service: api, weight: 90 }, { service: legacy, weight: 10 }]
          - name: sticky
            match: { prefix: /cart/ }
            split:
              backends: [{ service: api, weight: 50 }, { service: legacy, weight: 50 }]
              stickyOn: { header: x-user }
          - name: old
            match: { prefix: /old/ }
            redirect: { prefix: /new/, status: 308 }
        """
    }

    private func explainer() async throws -> RequestExplainer {
        try await RequestExplainer.offline(config: ConfigLoader.parse(yaml: yaml, file: "gateway.yaml"))
    }

    private func explain(_ method: String = "GET", _ url: String, _ headers: [String] = []) async throws -> Explanation {
        try await explainer().explain(ExplainRequest(method: method, url: url, headers: headers))
    }

    private func token(_ extra: [String: Any] = [:], now: Date = Date()) throws -> String {
        try mint.token(claims: TokenMint.claims(issuer: issuer, audience: "api", extra: extra, now: now))
    }

    func testAShadowedRouteIsNeverReachedAndSaysWhichRouteShadowsIt() async throws {
        let explanation = try await explain("GET", "http://api.example.com/api/users/7", ["Authorization: Bearer \(try token())"])
        XCTAssertEqual(explanation.normalizedPath, "/api/users/7")
        XCTAssertEqual(explanation.route?.name, "api")
        XCTAssertEqual(explanation.routes.map(\.outcome), ["failed", "failed", "matched", "notReached", "notReached",
                                                           "notReached", "notReached", "notReached"])
        let shadowed = explanation.routes[3]
        XCTAssertEqual(shadowed.name, "api-users")
        XCTAssertEqual(shadowed.wouldMatch, true)
        XCTAssertEqual(shadowed.shadowedBy?.name, "api")
        XCTAssertEqual(shadowed.shadowedBy?.line, explanation.route?.line)
        XCTAssertEqual(explanation.routes[0].failedCondition, "path")
        let text = explanation.renderText()
        XCTAssertTrue(text.contains("api-users"), text)
        XCTAssertTrue(text.contains("never matches anything: api (line \(explanation.route!.line))"), text)
    }

    func testAHeaderMatchThatFailsNamesTheHeader() async throws {
        let explanation = try await explain("GET", "http://api.example.com/api/orders", ["X-Canary: false"])
        let canary = explanation.routes[1]
        XCTAssertEqual(canary.name, "canary")
        XCTAssertEqual(canary.outcome, "failed")
        XCTAssertEqual(canary.failedCondition, "header")
        XCTAssertEqual(canary.reason, "header x-canary is \"false\", wants \"true\"")
        XCTAssertEqual(canary.line, 24, "the line of its `- name: canary`")
        XCTAssertEqual(explanation.route?.name, "api")

        let matched = try await explain("GET", "http://api.example.com/api/orders", ["X-Canary: true"])
        XCTAssertEqual(matched.route?.name, "canary")
        XCTAssertEqual(matched.backend?.targets.map(\.name), ["legacy"])
    }

    func testAJWTRouteWithoutATokenIsRefused() async throws {
        let explanation = try await explain("GET", "http://api.example.com/api/orders")
        let jwt = try XCTUnwrap(explanation.layers.first { $0.layer == "jwt" })
        XCTAssertEqual(jwt.decision, "reject")
        XCTAssertEqual(jwt.status, 401)
        XCTAssertEqual(jwt.policies?.first?.token?.state, "missing")
        XCTAssertEqual(explanation.result.action, "refuse")
        XCTAssertEqual(explanation.result.status, 401)
        XCTAssertEqual(explanation.result.by, "jwt")
        // The layers after the refusal are listed, not reached; the backend is still shown.
        XCTAssertEqual(explanation.layers.first { $0.layer == "rate-limit" }?.reached, false)
        XCTAssertEqual(explanation.backend?.targets.first?.name, "api")
    }

    func testAJWTRouteWithAValidTokenShowsTheSubjectAndClaimsAndGoesOn() async throws {
        let explanation = try await explain("GET", "http://api.example.com/api/orders",
                                            ["Authorization: Bearer \(try token(["scope": "read"]))"])
        let jwt = try XCTUnwrap(explanation.layers.first { $0.layer == "jwt" })
        XCTAssertEqual(jwt.decision, "proceed")
        let verified = try XCTUnwrap(jwt.policies?.first?.token)
        XCTAssertEqual(verified.state, "valid")
        XCTAssertEqual(verified.subject, "alice")
        XCTAssertEqual(verified.claims?["scope"], .string("read"))
        XCTAssertEqual(explanation.result.action, "forward")
        XCTAssertNil(explanation.result.status)
        XCTAssertEqual(explanation.rewrite?.upstreamPath, "/v2/orders")
        XCTAssertEqual(explanation.exchange?.timeout, "3s")
        XCTAssertEqual(explanation.exchange?.retries?.attempts, 2)
        XCTAssertEqual(explanation.exchange?.retries?.retryOn, ["5xx", "connect-failure"])
        XCTAssertEqual(explanation.exchange?.retries?.perTryTimeout, "1s")
        XCTAssertEqual(explanation.exchange?.retryBudgets?.map(\.service), ["api"])
        XCTAssertEqual(explanation.exchange?.mirror?.service, "shadow")
        XCTAssertEqual(explanation.backend?.targets.first?.service?.loadBalancer, "least_request")
        XCTAssertEqual(explanation.layers.map(\.layer),
                       ["forwarding-headers", "jwt", "rate-limit", "timeout", "retries", "mirror", "metrics", "access-log", "tap"],
                       "the order RequestPath builds")
    }

    func testAGRPCClientsSoonerDeadlineIsTheTimeoutInForce() async throws {
        let headers = ["Authorization: Bearer \(try token())", "Content-Type: application/grpc", "grpc-timeout: 200m"]
        var explanation = try await explain("POST", "http://api.example.com/api/pkg.Svc/Call", headers)
        XCTAssertEqual(explanation.exchange?.timeout, "200ms")
        XCTAssertEqual(explanation.exchange?.grpcTimeout, "200m")
        explanation = try await explain("POST", "http://api.example.com/api/pkg.Svc/Call",
                                        headers.dropLast() + ["grpc-timeout: 10S"])
        XCTAssertEqual(explanation.exchange?.timeout, "3s", "the route's 3s is sooner")
        XCTAssertNil(explanation.exchange?.grpcTimeout)
    }

    func testAnExpiredOrForeignTokenIsInvalidWithWhy() async throws {
        let expired = try token(now: Date().addingTimeInterval(-7200))
        var explanation = try await explain("GET", "http://api.example.com/api/orders", ["Authorization: Bearer \(expired)"])
        var policy = try XCTUnwrap(explanation.layers.first { $0.layer == "jwt" }?.policies?.first)
        XCTAssertEqual(policy.result, "invalid")
        XCTAssertEqual(policy.token?.reason, "expired")
        XCTAssertEqual(explanation.result.status, 401)

        let stranger = TokenMint()
        try await stranger.addKey(kid: "other", algorithm: "ES256")
        let foreign = try stranger.token(claims: TokenMint.claims(issuer: issuer, audience: "api"))
        explanation = try await explain("GET", "http://api.example.com/api/orders", ["Authorization: Bearer \(foreign)"])
        policy = try XCTUnwrap(explanation.layers.first { $0.layer == "jwt" }?.policies?.first)
        XCTAssertEqual(policy.token?.reason, "unknown_kid")
    }

    func testAJWKSURLTheCLICannotFetchIsSaidPlainly() async throws {
        // Port 1 on loopback: nothing listens, so the fetch fails at once.
        let config = try ConfigLoader.parse(yaml: """
            listeners:
              - name: public
                address: 127.0.0.1:8080
            policies:
              remote:
                jwt: { issuer: \(issuer), jwksUri: "http://127.0.0.1:1/jwks.json" }
            services:
              api: { endpoints: [127.0.0.1:9001] }
            routes:
              - match: { prefix: / }
                service: api
                policies: [remote]
            """, file: "gateway.yaml")
        let explainer = try await RequestExplainer.offline(config: config)
        let explanation = try explainer.explain(ExplainRequest(method: "GET", url: "http://api/x",
                                                               headers: ["Authorization: Bearer \(try token())"]))
        let policy = try XCTUnwrap(explanation.layers.first { $0.layer == "jwt" }?.policies?.first)
        XCTAssertEqual(policy.token?.reason, "unknown_kid")
        XCTAssertTrue(policy.reason?.contains("the CLI cannot fetch the JWKS at http://127.0.0.1:1/jwks.json") == true,
                      policy.reason ?? "")
        XCTAssertTrue(explanation.renderText().contains("admin POST /explain"))
    }

    func testAuthorizationDecidesOnTheVerifiedClaims() async throws {
        var explanation = try await explain("GET", "http://api.example.com/admin/x",
                                            ["Authorization: Bearer \(try token(["scope": "read"]))"])
        var authorization = try XCTUnwrap(explanation.layers.first { $0.layer == "authorization" })
        XCTAssertEqual(authorization.decision, "reject")
        XCTAssertEqual(authorization.status, 403)
        XCTAssertEqual(authorization.policies?.first?.result, "deny")
        XCTAssertEqual(explanation.result.by, "authorization")

        explanation = try await explain("GET", "http://api.example.com/admin/x",
                                        ["Authorization: Bearer \(try token(["scope": "admin"]))"])
        authorization = try XCTUnwrap(explanation.layers.first { $0.layer == "authorization" })
        XCTAssertEqual(authorization.decision, "proceed")
        XCTAssertEqual(authorization.policies?.first?.reason, "rule 1 of 1 allows it")
        XCTAssertEqual(explanation.result.action, "forward")
    }

    func testAWeightedSplitSaysItsWeightsAndThatEachRequestDraws() async throws {
        let explanation = try await explain("GET", "http://api.example.com/shop/cart")
        let split = try XCTUnwrap(explanation.backend?.split)
        XCTAssertEqual(split.sides.map(\.backend), ["api", "legacy"])
        XCTAssertEqual(split.sides.map(\.weight), [90, 10])
        XCTAssertEqual(split.sides.map(\.percent), [90, 10])
        XCTAssertNil(split.chosen, "a random draw per request")
        XCTAssertTrue(split.reason.contains("random"), split.reason)
        XCTAssertEqual(explanation.backend?.targets.map(\.name), ["api", "legacy"])
    }

    func testAStickySplitNamesTheSideThisRequestGetsEveryTime() async throws {
        let explainer = try await explainer()
        var seen: Set<String> = []
        for user in (0..<40).map({ "user-\($0)" }) {
            let first = try explainer.explain(ExplainRequest(method: "GET", url: "http://shop/cart/", headers: ["X-User: \(user)"]))
            let again = try explainer.explain(ExplainRequest(method: "GET", url: "http://shop/cart/", headers: ["X-User: \(user)"]))
            let chosen = try XCTUnwrap(first.backend?.split?.chosen)
            XCTAssertEqual(again.backend?.split?.chosen, chosen, "the same value, the same side")
            XCTAssertEqual(first.backend?.targets.map(\.name), [chosen])
            seen.insert(chosen)
        }
        XCTAssertEqual(seen, ["api", "legacy"], "both sides get some users")
        let anonymous = try explainer.explain(ExplainRequest(method: "GET", url: "http://shop/cart/"))
        XCTAssertNil(anonymous.backend?.split?.chosen)
        XCTAssertTrue(anonymous.backend?.split?.reason.hasPrefix("the request has no header x-user") == true)
    }

    func testRedirectsDirectResponsesAndNoRoute() async throws {
        let redirect = try await explain("GET", "https://api.example.com/old/page?q=1")
        XCTAssertEqual(redirect.redirect?.status, 308)
        XCTAssertEqual(redirect.redirect?.location, "http://api.example.com/new/page?q=1",
                       "the listener is plain http: the request arrives on http")
        XCTAssertEqual(redirect.result.action, "redirect")

        let direct = try await explain("GET", "/healthz")
        XCTAssertEqual(direct.request.host, "localhost")
        XCTAssertEqual(direct.directResponse?.status, 200)
        XCTAssertEqual(direct.result.status, 200)

        let none = try await explain("GET", "http://api.example.com/nothing")
        XCTAssertNil(none.route)
        XCTAssertEqual(none.result.status, 404)
        XCTAssertTrue(none.routes.allSatisfy { $0.outcome == "failed" })
        XCTAssertTrue(none.renderText().contains("no route: 404"))
    }

    func testTheEdgeRefusesWhatTheGatewayWouldRefuse() async throws {
        let explanation = try await explain("GET", "/a/%2e%2e/%2e%2e/etc")
        XCTAssertEqual(explanation.result.action, "refuse")
        XCTAssertEqual(explanation.result.status, 400)
        XCTAssertEqual(explanation.result.by, "edge")
        XCTAssertEqual(explanation.edge.last?.check, "path")
        XCTAssertEqual(explanation.result.reason, "'..' climbs above the root of the request path")
        XCTAssertTrue(explanation.routes.isEmpty)

        let dotted = try await explain("GET", "http://api.example.com/x/../api//orders#top")
        XCTAssertEqual(dotted.normalizedPath, "/api/orders")
        XCTAssertEqual(dotted.route?.name, "api")
    }

    func testBadInputIsAnErrorThatSaysWhatIsWrong() {
        XCTAssertThrowsError(try ExplainRequest(method: "GET", url: "ftp://x/y")) { error in
            XCTAssertTrue("\(error)".contains("http or https"), "\(error)")
        }
        XCTAssertThrowsError(try ExplainRequest(method: "GET", url: "api.example.com/x"))
        XCTAssertThrowsError(try ExplainRequest(method: "G ET", url: "/x"))
        XCTAssertThrowsError(try ExplainRequest(method: "GET", url: "/x", headers: ["NoColon"])) { error in
            XCTAssertEqual("\(error)", "header 'NoColon' is not 'Name: value'")
        }
        XCTAssertThrowsError(try ExplainRequest(method: "GET", url: "/x", headers: ["Bad Name: v"]))
        XCTAssertThrowsError(try ExplainRequest(method: "GET", url: "/x", certificatePEM: "not a certificate"))
        XCTAssertThrowsError(try ExplainRequest(method: "GET", url: "http://h:99999/x"))
    }

    func testTheJSONHasNoEscapedSlashes() async throws {
        let explanation = try await explain("GET", "http://api.example.com/api/orders")
        let json = String(decoding: explanation.encodedJSON(), as: UTF8.self)
        XCTAssertFalse(json.contains("\\/"), json)
        XCTAssertTrue(json.contains("\"normalizedPath\" : \"/api/orders\""), json)
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
        XCTAssertNotNil(object["routes"] as? [[String: Any]])
        XCTAssertNotNil(object["layers"] as? [[String: Any]])
    }

    /// The README's example is what `explain` prints for its config, line for line.
    func testTheReadmeExampleIsCurrent() async throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent()
        let readme = try String(contentsOf: root.appendingPathComponent("README.md"), encoding: .utf8)
        let explain = try XCTUnwrap(readme.components(separatedBy: "### Explain\n").dropFirst().first)
        func block(after marker: String, fence: String) throws -> String {
            let rest = try XCTUnwrap(explain.components(separatedBy: marker + "\n\n```" + fence + "\n").dropFirst().first, marker)
            return try XCTUnwrap(rest.components(separatedBy: "```").first)
        }
        let yaml = try block(after: "with this config:", fence: "yaml")
        let printed = try block(after: "prints:", fence: "text")
        let explainer = try await RequestExplainer.offline(config: ConfigLoader.parse(yaml: yaml, file: "gateway.yaml"))
        let explanation = try explainer.explain(ExplainRequest(
            method: "GET", url: "http://api.example.com/api/orders/7?full=1", headers: ["x-api-key: k1"]))
        XCTAssertEqual(explanation.renderText(), printed)
    }

    /// Every layer `RequestPath` can build explains itself (none falls back to its type's
    /// name), in the order `RequestPath` builds them, and explaining spends nothing: the rate
    /// limit of one request a minute still lets the next real request through.
    func testEveryLayerExplainsItselfInRequestPathOrderAndSpendsNothing() async throws {
        let yaml = """
            listeners:
              - name: public
                address: 127.0.0.1:8080
                policies: [per-ip]
            policies:
              per-ip:
                rateLimit: { requests: 1, per: 1m, burst: 1 }
              users:
                jwt: { issuer: \(issuer), jwks: \(folder.appendingPathComponent("jwks.json").path), optional: true }
              anyone:
                authorization:
                  rules:
                    - to: { methods: [GET] }
            services:
              api: { endpoints: [127.0.0.1:9001] }
              copy: { endpoints: [127.0.0.1:9002] }
            routes:
              - match: { prefix: / }
                service: api
                policies: [users, anyone]
                cors: { allowOrigins: ["https://app.example.com"] }
                fault: { abort: { percent: 50, status: 503 } }
                retries: { attempts: 1 }
                mirror: { service: copy, percent: 100 }
                requestHeaders: { set: { x-env: prod } }
                responseHeaders: { remove: [server] }
            """
        let config = try ConfigLoader.parse(yaml: yaml, file: "gateway.yaml")
        let explainer = try await RequestExplainer.offline(config: config)
        let explanation = try explainer.explain(ExplainRequest(method: "GET", url: "http://api/x",
                                                               headers: ["Origin: https://app.example.com"]))
        let built = explainer.snapshot.requestPath.layers(listener: "public", route: 0) + explainer.snapshot.requestPath.ending
        XCTAssertEqual(explanation.layers.count, built.count)
        XCTAssertEqual(explanation.layers.map(\.layer),
                       ["cors", "forwarding-headers", "jwt", "authorization", "rate-limit", "fault", "timeout", "retries",
                        "mirror", "request-headers", "response-headers", "metrics", "access-log", "tap"])
        XCTAssertEqual(explanation.layers.first { $0.layer == "fault" }?.decision, "maybe")
        XCTAssertEqual(explanation.layers.first { $0.layer == "jwt" }?.decision, "proceed", "optional, and no token")
        XCTAssertEqual(explanation.result.action, "forward")
        XCTAssertEqual(explanation.exchange?.mirror?.service, "copy")

        for _ in 0..<3 { _ = try explainer.explain(ExplainRequest(method: "GET", url: "http://api/x")) }
        let limiter = try XCTUnwrap(explainer.snapshot.rateLimiters["per-ip"])
        guard case .allowed = limiter.take(key: "127.0.0.1", now: 0) else {
            return XCTFail("explaining took the only token of the bucket")
        }
    }
}
