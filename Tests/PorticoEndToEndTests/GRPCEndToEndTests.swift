import Foundation
import JWTTestSupport
import XCTest

/// gRPC through the real binary, with Python's `grpcio` as both the client and the server
/// (`GRPCPeers`): the four call kinds, trailers, a 10 MiB message each way, deadlines,
/// cancellation, retries on a gRPC status, and the gateway's own answers in gRPC's terms.
final class GRPCEndToEndTests: GatewayTestCase {
    private var server: PythonPeer?

    override func tearDown() {
        server?.stop()
        super.tearDown()
    }

    private func startServer(arguments: [String] = []) throws -> Int {
        let port = try freePort()
        server = try PythonPeer(script: GRPCPeers.server, arguments: [String(port)] + arguments, marker: marker)
        return port
    }

    private func call(_ scenario: String, _ arguments: [String] = [], port: Int? = nil, host: String = "127.0.0.1",
                      environment: [String: String] = [:]) throws -> [String: String] {
        let target = "\(host):\(port ?? gateway.httpPort)"
        let result = try PythonPeer.run(script: GRPCPeers.client, arguments: [target, scenario] + arguments,
                                        environment: environment)
        let values = GRPCPeers.values(result.output)
        XCTAssertNotNil(values["code"], "the client printed no outcome: \(result.output)")
        return values
    }

    private func config(servicePort: Int, protocol upstreamProtocol: String = "h2c", extra: String = "",
                        routeExtra: String = "") -> String {
        """
        limits:
          maxRequestBody: 64MiB
        accessLog: { format: json }
        \(extra)
        services:
          greeter:
            endpoints: [127.0.0.1:\(servicePort)]
            protocol: \(upstreamProtocol)
        routes:
          - name: echo
            match: { grpc: { service: test.Echo } }
            service: greeter
        \(routeExtra)
        """
    }

    func testTheFourCallKindsWithTrailersOverH2c() throws {
        let port = try startServer()
        gateway = try PorticoProcess(config: config(servicePort: port))

        let unary = try call("unary")
        XCTAssertEqual(unary["code"], "OK", "\(unary)")
        XCTAssertEqual(unary["reply"], "hello")
        XCTAssertEqual(unary["trailers"], "x-trailer:yes", "the upstream's trailers reach the client after the body")

        XCTAssertEqual(try call("server-stream")["replies"], "0,1,2,3,4")
        // 10 MiB and 5 bytes, streamed from the client.
        XCTAssertEqual(try call("client-stream")["total"], "10485765")
        XCTAssertEqual(try call("bidi")["replies"], "re: 1,re: 2,re: 3")
        // 10 MiB streamed to the client, byte for byte.
        let download = try call("big-download")
        XCTAssertEqual(download["size"], "10485760")
        let chunk = Data((0..<4096).flatMap { _ in (0...255).map { UInt8($0) } })
        XCTAssertEqual(download["sha256"], sha256Hex(repeating: chunk, times: 10))

        // The access log carries the gRPC status of each call.
        XCTAssertTrue(eventually { self.gateway.stdout.contains("\"uri\":\"/test.Echo/Chat\"") })
        let chat = gateway.stdout.split(separator: "\n").first { $0.contains("/test.Echo/Chat") }.map(String.init) ?? ""
        XCTAssertTrue(chat.contains("\"grpc_status\":0"), chat)
    }

    func testAnUpstreamStatusReachesTheClientAndTheMetrics() throws {
        let port = try startServer()
        gateway = try PorticoProcess(config: config(servicePort: port))
        let failed = try call("fail", ["PERMISSION_DENIED"])
        XCTAssertEqual(failed["code"], "PERMISSION_DENIED", "a trailers-only answer is relayed as one")
        XCTAssertEqual(failed["details"], "failed on purpose")
        let metrics = try Curl.run(["\(gateway.admin)/metrics"])
        XCTAssertTrue(metrics.body.contains("portico_grpc_requests_total{route=\"echo\",grpc_status=\"7\"} 1"), metrics.body)
    }

    func testAnHTTP2ClientOverTLSReachesAnH2ServiceOverTLS() throws {
        let certificates = try TestCertificates.make(name: "localhost")
        let port = try startServer(arguments: [certificates.certificate, certificates.key])
        gateway = try PorticoProcess(config: config(servicePort: port, protocol: "h2").replacingOccurrences(
            of: "protocol: h2", with: "protocol: h2\n    tls: { ca: \(certificates.ca), serverName: localhost }"))
        let unary = try call("unary", port: gateway.tlsPort, host: "localhost",
                             environment: ["GRPC_CA": gateway.certificateAuthority])
        XCTAssertEqual(unary["code"], "OK", "\(unary)")
        XCTAssertEqual(unary["trailers"], "x-trailer:yes")
        XCTAssertEqual(try call("bidi", port: gateway.tlsPort, host: "localhost",
                                environment: ["GRPC_CA": gateway.certificateAuthority])["replies"], "re: 1,re: 2,re: 3")
    }

    func testAutoFollowsALPNToHTTP2() throws {
        let certificates = try TestCertificates.make(name: "localhost")
        let port = try startServer(arguments: [certificates.certificate, certificates.key])
        gateway = try PorticoProcess(config: config(servicePort: port, protocol: "auto").replacingOccurrences(
            of: "protocol: auto", with: "protocol: auto\n    tls: { ca: \(certificates.ca), serverName: localhost }"))
        // grpcio's server offers only h2 by ALPN: `auto` must speak HTTP/2 to it.
        XCTAssertEqual(try call("server-stream")["replies"], "0,1,2,3,4")
    }

    func testTheClientsDeadlineIsHonouredAndCancellationReachesTheServer() throws {
        let port = try startServer()
        gateway = try PorticoProcess(config: config(servicePort: port))
        let marker = FileManager.default.temporaryDirectory.appendingPathComponent("grpc-cancelled-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: marker) }
        let sleep = try call("sleep", [marker.path, "0.5"])
        XCTAssertEqual(sleep["code"], "DEADLINE_EXCEEDED", "\(sleep)")
        XCTAssertLessThan(Double(sleep["elapsed"] ?? "99") ?? 99, 5)
        // The client's cancellation (its RST_STREAM at the deadline) reaches the server's call.
        XCTAssertTrue(eventually(timeout: 10) { FileManager.default.fileExists(atPath: marker.path) },
                      "the server's call was not cancelled: \(server?.output ?? "")")
    }

    func testGRPCTimeoutBoundsTheCallAtTheGateway() throws {
        let port = try startServer()
        gateway = try PorticoProcess(config: config(servicePort: port))
        // A raw HTTP/2 request that states a 300 ms deadline and does not enforce it itself:
        // the gateway answers DEADLINE_EXCEEDED (a trailers-only answer), long before the
        // route's default timeout.
        let marker = FileManager.default.temporaryDirectory.appendingPathComponent("grpc-timeout-\(UUID().uuidString)").path
        var frame = Data([0, 0, 0, 0, UInt8(marker.utf8.count)])
        frame.append(contentsOf: Array(marker.utf8))
        let started = Date()
        let response = try Curl.run(["--http2-prior-knowledge", "-X", "POST", "-H", "content-type: application/grpc",
                                     "-H", "te: trailers", "-H", "grpc-timeout: 300m", "--data-binary", "@-",
                                     "\(gateway.http)/test.Echo/Sleep"], stdin: frame)
        XCTAssertLessThan(Date().timeIntervalSince(started), 5)
        XCTAssertEqual(response.status, 200)
        XCTAssertEqual(response.header("grpc-status"), "4", "\(response.headers)")
        XCTAssertEqual(response.header("content-type"), "application/grpc")
    }

    func testRetriesOnAGRPCStatus() throws {
        let port = try startServer()
        gateway = try PorticoProcess(config: config(
            servicePort: port, routeExtra: "    retries: { attempts: 2, retryOn: [unavailable, resource-exhausted] }"))
        let reply = try call("flaky", ["k1"])
        XCTAssertEqual(reply["code"], "OK", "UNAVAILABLE is retried: \(reply)")
        XCTAssertEqual(reply["reply"], "ok k1")
        XCTAssertEqual(server?.output.components(separatedBy: "call Flaky:k1").count, 3, "two tries reached the server")
    }

    func testAServerThatDiesMidStreamIsUnavailable() throws {
        let port = try startServer()
        gateway = try PorticoProcess(config: config(servicePort: port))
        let died = try call("die")
        XCTAssertEqual(died["replies"], "first")
        XCTAssertEqual(died["code"], "UNAVAILABLE", "\(died)")
        // The server is gone: the next call is refused at connect, also UNAVAILABLE.
        XCTAssertTrue(eventually { self.server?.process.isRunning == false })
        let refused = try call("unary")
        XCTAssertEqual(refused["code"], "UNAVAILABLE", "\(refused)")
    }

    func testAFunctionWhoseWorkerSpeaksH2cServesGRPC() throws {
        gateway = try PorticoProcess(config: "limits: { maxRequestBody: 64MiB }\nroutes: []", prepare: { root in
            try self.writeFunction("greeter", script: GRPCPeers.server, in: root, manifest: """
                protocol: h2c
                routes:
                  - grpc: { service: test.Echo }
                """)
        })
        // The first call waits for a worker to start (scale from zero), then all four kinds.
        let unary = try call("unary")
        XCTAssertEqual(unary["code"], "OK", "\(unary) \(gateway.stderr)")
        XCTAssertEqual(unary["trailers"], "x-trailer:yes")
        XCTAssertEqual(try call("server-stream")["replies"], "0,1,2,3,4")
        XCTAssertEqual(try call("client-stream")["code"], "OK")
        XCTAssertEqual(try call("bidi")["replies"], "re: 1,re: 2,re: 3")
    }

    func testTheGatewaysOwnAnswersAreGRPCStatuses() async throws {
        let mint = TokenMint()
        try await mint.addKey(kid: "rsa-1", algorithm: "RS256")
        let closedPort = try freePort()
        gateway = try PorticoProcess(config: """
            policies:
              jwt-required:
                jwt: { issuer: https://auth.example.com, audiences: [api], jwks: jwks.json }
              one-per-minute:
                rateLimit: { requests: 1, per: 1m }
            services:
              gone: { endpoints: [127.0.0.1:\(closedPort)], protocol: h2c }
            routes:
              - name: guarded
                match: { grpc: { service: test.Echo, method: Sleep } }
                service: gone
                policies: [jwt-required]
              - name: limited
                match: { grpc: { service: test.Echo, method: Count } }
                service: gone
                policies: [one-per-minute]
              - name: down
                match: { grpc: { service: test.Echo } }
                service: gone
            """, prepare: { root in
                try mint.jwks().write(to: root.appendingPathComponent("jwks.json"), atomically: true, encoding: .utf8)
            })
        XCTAssertEqual(try call("unknown-method")["code"], "UNIMPLEMENTED", "no route")
        XCTAssertEqual(try call("sleep", ["/nonexistent", "5"])["code"], "UNAUTHENTICATED", "no token")
        XCTAssertEqual(try call("server-stream")["code"], "UNAVAILABLE", "the first call passes the limit, and nobody listens")
        XCTAssertEqual(try call("server-stream")["code"], "RESOURCE_EXHAUSTED", "rate limited")
        XCTAssertEqual(try call("unary")["code"], "UNAVAILABLE", "connect refused")
        // Not gRPC: the same gateway still answers plain requests in HTTP.
        XCTAssertEqual(try Curl.run(["\(gateway.http)/nowhere"]).status, 404)
    }

    private func sha256Hex(repeating chunk: Data, times: Int) -> String {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("grpc-big-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: file) }
        var all = Data()
        for _ in 0..<times { all.append(chunk) }
        try? all.write(to: file)
        let output = (try? runCommand("/usr/bin/sha256sum", [file.path]).output) ?? ""
        return String(output.prefix { $0 != " " })
    }
}

/// A development CA and a server certificate for `localhost` and 127.0.0.1, made by
/// `portico certs` in a folder of their own.
struct TestCertificates {
    let ca: String
    let certificate: String
    let key: String

    static func make(name: String) throws -> TestCertificates {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("test-certs-\(UUID().uuidString)")
        let binary = PorticoProcess.binary.path
        for arguments in [["certs", "init"], ["certs", "issue", "server", "--dns", name, "--ip", "127.0.0.1"]] {
            let result = try runCommand(binary, arguments + ["--dir", folder.path])
            XCTAssertEqual(result.status, 0, result.output)
        }
        return TestCertificates(ca: folder.appendingPathComponent("ca.pem").path,
                                certificate: folder.appendingPathComponent("server.pem").path,
                                key: folder.appendingPathComponent("server-key.pem").path)
    }
}
