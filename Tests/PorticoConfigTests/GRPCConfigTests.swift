import PorticoConfig
import XCTest

/// A service's `protocol`, the `grpc` route match, gRPC retry conditions and `cors`.
final class GRPCConfigTests: XCTestCase {
    func testProtocolsGRPCMatchesAndCORSParse() throws {
        let config = try ConfigLoader.parse(yaml: """
            listeners:
              - address: 127.0.0.1:8080
            services:
              plain: { endpoints: [127.0.0.1:9001] }
              greeter: { endpoints: [127.0.0.1:9002], protocol: h2c }
              secure: { endpoints: [127.0.0.1:9003], protocol: h2, tls: {} }
              either: { endpoints: [127.0.0.1:9004], protocol: auto, tls: {} }
            routes:
              - match: { grpc: { service: helloworld.Greeter, method: SayHello } }
                service: greeter
                retries: { attempts: 2, retryOn: [unavailable, resource-exhausted, cancelled, deadline-exceeded, internal] }
              - match: { grpc: { service: helloworld.Greeter } }
                service: greeter
                cors: { allowOrigins: ["https://app.example.com"], exposeHeaders: [Grpc-Status], maxAge: 10m }
              - match: { grpc: {} }
                service: secure
            """, file: "gateway.yaml")
        XCTAssertEqual(config.services.map(\.protocol), [.http1, .h2c, .h2, .auto])
        XCTAssertEqual(config.routes[0].match, RouteMatch(path: .exact("/helloworld.Greeter/SayHello"), grpc: true))
        XCTAssertEqual(config.routes[1].match, RouteMatch(path: .prefix("/helloworld.Greeter/"), grpc: true))
        XCTAssertEqual(config.routes[2].match, RouteMatch(path: .any, grpc: true))
        XCTAssertEqual(config.routes[0].retries?.retryOn,
                       [.grpcUnavailable, .grpcResourceExhausted, .grpcCancelled, .grpcDeadlineExceeded, .grpcInternal])
        var cors = CORSConfig()
        cors.allowOrigins = ["https://app.example.com"]
        cors.exposeHeaders = ["grpc-status"]
        cors.maxAge = .seconds(600)
        XCTAssertEqual(config.routes[1].cors, cors)
    }

    func testBadProtocolsGRPCMatchesAndCORSAreRejectedWithFileLineAndKey() {
        let text = rejectionText("""
            listeners:
              - address: 127.0.0.1:8080
            services:
              a: { endpoints: [127.0.0.1:9001], protocol: http2 }
              b: { endpoints: [127.0.0.1:9002], protocol: h2 }
              c: { endpoints: [127.0.0.1:9003], protocol: h2c, tls: {} }
            routes:
              - match: { grpc: { method: SayHello } }
                service: a
              - match: { grpc: { service: "hello/Greeter" } }
                service: a
              - match: { grpc: { service: a.B }, prefix: /x/ }
                service: a
              - match: { prefix: / }
                service: a
                cors: { allowOrigins: ["*"], allowCredentials: true }
              - match: { prefix: / }
                service: a
                cors: { allowMethods: [POST] }
            """)
        XCTAssertTrue(text.contains("gateway.yaml:4:47: services.a.protocol: expected one of http1, h2c, h2, auto, got 'http2'"), text)
        XCTAssertTrue(text.contains("gateway.yaml:5:47: services.b.protocol: protocol 'h2' is HTTP/2 over TLS (ALPN) and needs 'tls'"), text)
        XCTAssertTrue(text.contains("services.c.protocol: protocol 'h2c' is HTTP/2 without TLS"), text)
        XCTAssertTrue(text.contains("routes[0].match.grpc.method: a gRPC method is matched within its service"), text)
        XCTAssertTrue(text.contains("routes[1].match.grpc.service: expected a fully qualified service name"), text)
        XCTAssertTrue(text.contains("routes[2].match.prefix: 'grpc' already matches the path"), text)
        XCTAssertTrue(text.contains("routes[3].cors.allowCredentials: allowCredentials cannot go with allowOrigins '*'"), text)
        XCTAssertTrue(text.contains("routes[4].cors.allowOrigins: cors needs 'allowOrigins'"), text)
    }

    func testAFunctionMaySpeakH2c() throws {
        let manifest = try FunctionManifestLoader.parse(yaml: "command: [python3, server.py]\nprotocol: h2c\n", file: "function.yaml",
                                                              name: "greeter", directory: "/tmp/greeter")
        XCTAssertEqual(manifest.protocol, .h2c)
        let text = rejectionText(of: {
            _ = try FunctionManifestLoader.parse(yaml: "command: [python3, server.py]\nprotocol: h2\n", file: "function.yaml",
                                                       name: "greeter", directory: "/tmp/greeter")
        })
        XCTAssertTrue(text.contains("protocol: expected one of http1, h2c, got 'h2'"), text)
    }
}
