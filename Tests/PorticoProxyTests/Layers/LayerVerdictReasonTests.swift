import NIOCore
import PorticoConfig
import PorticoCore
import PorticoHTTP1
@testable import PorticoProxy
import XCTest

/// Every layer that refuses a request says why (`LayerVerdict.reject`'s `reason`), which the
/// metrics, the access log and tracing read from `ExchangeEnding.localReply`.
final class LayerVerdictReasonTests: XCTestCase {
    private let yaml = """
        listeners:
          - name: public
            address: 127.0.0.1:8080
        policies:
          auth:
            jwt: { issuer: https://auth.example.com, audiences: [api], jwks: jwks.json }
          api-only:
            authorization:
              rules:
                - to: { paths: ["/api/*"] }
          one:
            rateLimit: { requests: 1, per: 1m, burst: 1 }
        services:
          api: { endpoints: [127.0.0.1:9001] }
        routes:
          - name: jwt
            match: { prefix: /jwt/ }
            service: api
            policies: [auth]
          - name: authz
            match: { prefix: / }
            service: api
            policies: [api-only, one]
            cors: { allowOrigins: [https://app.example.com], allowMethods: [GET] }
            fault: { abort: { percent: 100, status: 418 } }
        """

    private func verdicts(route: Int, _ path: String, _ fields: [(String, String)] = [], method: String = "GET",
                          times: Int = 1) throws -> [LayerVerdict] {
        let snapshot = try RuntimeSnapshot(config: ConfigLoader.parse(yaml: yaml, file: "gateway.yaml"), generation: 1)
        let layers = snapshot.requestPath.layers(listener: "public", route: route)
        let connection = DownstreamConnectionInfo(scheme: "http", listenerName: "public", clientAddress: "10.0.0.7",
                                                  protocolName: "HTTP/1.1")
        var results: [LayerVerdict] = []
        for index in 0..<times {
            let head = RequestHead(method: method, target: path, version: .http1_1,
                                   fields: HTTPFieldList([("host", "api.example")] + fields))
            var request = LayerRequest(head: head, query: nil, path: path, authority: "api.example", requestID: "r\(index)",
                                       hadRequestID: false, connection: connection, random: FastRandom(seed: 1))
            var verdict = LayerVerdict.proceed
            for layer in layers {
                verdict = layer.requestHead(&request)
                if case .reject = verdict { break }
            }
            results.append(verdict)
        }
        return results
    }

    private func reason(_ verdict: LayerVerdict?) -> LocalReplyReason? {
        guard case .reject(_, _, _, let reason)? = verdict else { return nil }
        return reason
    }

    func testJWTSaysWhetherTheTokenWasMissingOrInvalid() throws {
        XCTAssertEqual(reason(try verdicts(route: 0, "/jwt/a").first), .jwtMissing)
        XCTAssertEqual(reason(try verdicts(route: 0, "/jwt/a", [("authorization", "Bearer not.a.token")]).first), .jwtInvalid)
        XCTAssertEqual(reason(try verdicts(route: 0, "/jwt/a", [("authorization", "Bearer x")]).first), .jwtInvalid)
    }

    func testAuthorizationRateLimitFaultAndCORSSayTheirReasons() throws {
        XCTAssertEqual(reason(try verdicts(route: 1, "/other").first), .authzDenied)
        // The first request passes the limit and meets the fault; the second is limited.
        XCTAssertEqual(try verdicts(route: 1, "/api/x", times: 2).map(reason), [.fault, .rateLimited])
        let preflight = [("origin", "https://app.example.com"), ("access-control-request-method", "GET")]
        XCTAssertEqual(reason(try verdicts(route: 1, "/api/x", preflight, method: "OPTIONS").first), .corsPreflight)
        let refused = [("origin", "https://evil.example.com"), ("access-control-request-method", "GET")]
        XCTAssertEqual(reason(try verdicts(route: 1, "/api/x", refused, method: "OPTIONS").first), .corsDenied)
    }
}
