import NIOCore
import PorticoConfig
import PorticoCore
import PorticoHTTP1
@testable import PorticoProxy
import XCTest

/// The assembly of the request path (`RequestPath`): which layers a route's requests pass, in
/// which order, and what they do to a request, without sockets.
final class RequestPathTests: XCTestCase {
    private let yaml = """
        listeners:
          - name: public
            address: 127.0.0.1:8080
            policies: [per-ip, admins]
          - name: internal
            address: 127.0.0.1:8081
        policies:
          per-ip:
            rateLimit: { requests: 1, per: 1m, burst: 1 }
          per-key:
            rateLimit: { requests: 5, per: 1m, key: { header: x-api-key } }
          admins:
            authorization:
              rules:
                - to: { paths: ["/api/*"] }
        services:
          api: { endpoints: [127.0.0.1:9001] }
          api-next: { endpoints: [127.0.0.1:9002] }
        routes:
          - match: { prefix: /api/ }
            service: api
            policies: [per-key, per-ip]
            fault: { delay: { percent: 100, duration: 5ms } }
            timeout: 3s
            retries: { attempts: 2, perTryTimeout: 1s, retryOn: [gateway-error] }
            mirror: { service: api-next, percent: 100 }
            requestHeaders: { set: { x-env: prod } }
            responseHeaders: { remove: [server] }
          - match: { prefix: / }
            service: api
        """

    private func snapshot() throws -> RuntimeSnapshot {
        try RuntimeSnapshot(config: ConfigLoader.parse(yaml: yaml, file: "gateway.yaml"), generation: 1)
    }

    private func names(_ layers: [any RequestLayer]) -> [String] {
        layers.map { String(describing: type(of: $0)) }
    }

    func testTheLayersOfARouteComeInTheAssemblysOrder() throws {
        let path = try snapshot().requestPath
        XCTAssertEqual(names(path.layers(listener: "internal", route: 0)),
                       ["ForwardingHeadersLayer", "RateLimitLayer", "FaultLayer", "RouteTimeoutLayer", "RetryLayer",
                        "MirrorLayer", "RequestHeadersPolicy", "ResponseHeadersPolicy"])
        XCTAssertEqual(names(path.layers(listener: "public", route: 0)),
                       ["ForwardingHeadersLayer", "AuthorizationLayer", "RateLimitLayer", "FaultLayer",
                        "RouteTimeoutLayer", "RetryLayer", "MirrorLayer", "RequestHeadersPolicy", "ResponseHeadersPolicy"],
                       "the listener's authorization joins the route's layers")
        XCTAssertEqual(names(path.layers(listener: "internal", route: 1)), ["ForwardingHeadersLayer", "RouteTimeoutLayer"],
                       "every route has a timeout")
        XCTAssertEqual(names(path.ending), ["MetricsLayer", "AccessLogLayer", "TapLayer"])
    }

    func testAPolicyTheListenerAndTheRouteBothNameRunsOnceWithTheListeners() throws {
        let path = try snapshot().requestPath
        let limit = try XCTUnwrap(path.layers(listener: "public", route: 0).compactMap { $0 as? RateLimitLayer }.first)
        XCTAssertEqual(limit.limiters.map(\.policyName), ["per-ip", "per-key"])
        let onInternal = try XCTUnwrap(path.layers(listener: "internal", route: 0).compactMap { $0 as? RateLimitLayer }.first)
        XCTAssertEqual(onInternal.limiters.map(\.policyName), ["per-key", "per-ip"])
    }

    func testARequestPassesTheLayersHooksInOrder() throws {
        let path = try snapshot().requestPath
        let layers = path.layers(listener: "internal", route: 0)
        let connection = DownstreamConnectionInfo(scheme: "https", listenerName: "internal", clientAddress: "10.0.0.7",
                                                  protocolName: "HTTP/1.1")
        let head = RequestHead(method: "GET", target: "/api/x", version: .http1_1,
                               fields: HTTPFieldList([("host", "api.example"), ("x-forwarded-client-cert", "forged")]))
        var request = LayerRequest(head: head, query: nil, path: "/api/x", authority: "api.example", requestID: "r1",
                                   hadRequestID: false, connection: connection, random: FastRandom(seed: 1))
        var verdicts: [String] = []
        for layer in layers {
            switch layer.requestHead(&request) {
            case .proceed: verdicts.append("proceed")
            case .delay(let delay): verdicts.append("delay \(delay.nanoseconds / 1_000_000)ms")
            case .reject(let status, _, _, _): verdicts.append("reject \(status.code)")
            }
        }
        XCTAssertEqual(verdicts, ["proceed", "proceed", "delay 5ms", "proceed", "proceed", "proceed", "proceed", "proceed"])
        XCTAssertFalse(request.head.fields.contains("x-forwarded-client-cert"), "a client's claim never passes")
        // What the exchange is told: the route's timeout, its retries, the mirror's service.
        XCTAssertEqual(request.timeout, .seconds(3))
        XCTAssertEqual(request.retries?.rules.retries, 2)
        XCTAssertEqual(request.retries?.rules.conditions, [.gatewayError])
        XCTAssertEqual(request.retries?.perTryTimeout, .seconds(1))
        XCTAssertEqual(request.mirrorService, "api-next")

        var upstream = request.head
        for layer in layers { layer.upstreamHead(&upstream, of: request) }
        XCTAssertEqual(upstream.fields.firstValue(of: "x-forwarded-for"), "10.0.0.7")
        XCTAssertEqual(upstream.fields.firstValue(of: "x-forwarded-proto"), "https")
        XCTAssertEqual(upstream.fields.firstValue(of: "x-request-id"), "r1")
        XCTAssertEqual(upstream.fields.firstValue(of: "x-env"), "prod", "the route's edit, after Portico's own")

        // A client's X-Forwarded-For over several lines is one list: all of it, then this hop.
        var chained = head
        chained.fields.append(name: "X-Forwarded-For", value: "1.1.1.1")
        chained.fields.append(name: "x-forwarded-for", value: "2.2.2.2, 3.3.3.3")
        layers[0].upstreamHead(&chained, of: request)
        XCTAssertEqual(chained.fields.values(of: "x-forwarded-for"), ["1.1.1.1, 2.2.2.2, 3.3.3.3, 10.0.0.7"])

        var response = ResponseHead(status: 200, fields: HTTPFieldList([("Server", "py"), ("content-length", "0")]))
        for layer in layers { layer.responseHead(&response) }
        XCTAssertEqual(response.fields.pairs.map(\.name), ["content-length"])

        // The second request from the same client on the same key: per-ip allows one a minute.
        var again = LayerRequest(head: head, query: nil, path: "/api/x", authority: "api.example", requestID: "r2",
                                 hadRequestID: false, connection: connection, random: FastRandom(seed: 2))
        let limit = try XCTUnwrap(layers.compactMap { $0 as? RateLimitLayer }.first)
        guard case .reject(let status, let headers, let backend, let reason) = limit.requestHead(&again) else {
            return XCTFail("the second request within the minute passed")
        }
        XCTAssertEqual(status, .tooManyRequests)
        XCTAssertEqual(backend, "rate_limit")
        XCTAssertEqual(reason, .rateLimited)
        XCTAssertEqual(headers.first?.0, "retry-after")
    }

    func testAMirrorTakesItsShareOfRequestsByDraw() throws {
        let mirror = MirrorLayer(mirror: MirrorConfig(service: "api-next", percent: 25))
        let connection = DownstreamConnectionInfo(scheme: "http", listenerName: "internal", clientAddress: "10.0.0.7",
                                                  protocolName: "HTTP/1.1")
        let head = RequestHead(method: "GET", target: "/", version: .http1_1, fields: HTTPFieldList([("host", "a")]))
        var random = FastRandom(seed: 7)
        var mirrored = 0
        for index in 0..<4000 {
            var request = LayerRequest(head: head, query: nil, path: "/", authority: "a", requestID: "r\(index)",
                                       hadRequestID: false, connection: connection, random: random)
            guard case .proceed = mirror.requestHead(&request) else { return XCTFail("a mirror never holds the request") }
            random = request.random
            if request.mirrorService == "api-next" { mirrored += 1 }
        }
        XCTAssertTrue((800...1200).contains(mirrored), "about a quarter: \(mirrored) of 4000")
        let never = MirrorLayer(mirror: MirrorConfig(service: "api-next", percent: 0))
        for index in 0..<100 {
            var request = LayerRequest(head: head, query: nil, path: "/", authority: "a", requestID: "n\(index)",
                                       hadRequestID: false, connection: connection, random: random)
            _ = never.requestHead(&request)
            random = request.random
            XCTAssertNil(request.mirrorService, "0 percent mirrors nothing")
        }
    }
}
