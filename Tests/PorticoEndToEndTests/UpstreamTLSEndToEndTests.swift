import Foundation
import XCTest

/// Services reached over TLS and mTLS: the upstream is Python's own TLS server (the ssl
/// module), with certificates made by `portico certs`.
final class UpstreamTLSEndToEndTests: GatewayTestCase {
    static let backendID = "spiffe://example.org/ns/default/sa/backend"
    static let gatewayID = "spiffe://example.org/ns/default/sa/gateway"

    /// Answers `peer=URI` with the client certificate's URI SAN, or `peer=none`.
    static let tlsServer = """
        import ssl, sys, http.server

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                who = "none"
                for kind, value in (self.connection.getpeercert() or {}).get("subjectAltName", ()):
                    if kind == "URI":
                        who = value
                body = f"peer={who}\\n".encode()
                self.send_response(200)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        port, certificate, key, ca, mode = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(certificate, key)
        context.load_verify_locations(ca)
        context.verify_mode = ssl.CERT_REQUIRED if mode == "required" else ssl.CERT_OPTIONAL
        server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        server.socket = context.wrap_socket(server.socket, server_side=True)
        server.serve_forever()
        """

    private var servers: [Process] = []
    private var certs: URL!

    override func setUpWithError() throws {
        try super.setUpWithError()
        certs = FileManager.default.temporaryDirectory.appendingPathComponent("upstream-tls-\(UUID().uuidString)")
        let binary = PorticoProcess.binary.path
        for arguments in [
            ["certs", "init"],
            ["certs", "issue", "backend", "--spiffe", Self.backendID, "--dns", "localhost", "--ip", "127.0.0.1"],
            ["certs", "issue", "gateway-client", "--spiffe", Self.gatewayID],
        ] {
            let result = try runCommand(binary, arguments + ["--dir", certs.path])
            XCTAssertEqual(result.status, 0, result.output)
        }
        _ = try runCommand(binary, ["certs", "init", "--dir", certs.appendingPathComponent("other").path])
        try Self.tlsServer.write(to: certs.appendingPathComponent("server.py"), atomically: true, encoding: .utf8)
    }

    override func tearDown() {
        for server in servers where server.isRunning {
            server.terminate()
            server.waitUntilExit()
        }
        super.tearDown()
    }

    private func path(_ name: String) -> String { certs.appendingPathComponent(name).path }

    /// Starts the TLS upstream; `mode` is `optional` or `required` (client certificates).
    private func startServer(mode: String) throws -> Int {
        let port = try freePort()
        let server = Process()
        server.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        server.arguments = [path("server.py"), String(port), path("backend.pem"), path("backend-key.pem"), path("ca.pem"), mode]
        server.standardOutput = FileHandle.nullDevice
        server.standardError = FileHandle.nullDevice
        try server.run()
        servers.append(server)
        XCTAssertTrue(eventually {
            (try? Curl.run(["--cacert", self.path("ca.pem"), "--cert", self.path("gateway-client.pem"),
                            "--key", self.path("gateway-client-key.pem"), "https://localhost:\(port)/"]).status) == 200
        }, "the TLS upstream starts")
        return port
    }

    private func route(_ name: String, port: Int, tls: String) -> String {
        """
          \(name):
            endpoints: [127.0.0.1:\(port)]
            tls: \(tls)
        """
    }

    func testTLSAndMutualTLSToAService() throws {
        let optional = try startServer(mode: "optional")
        let required = try startServer(mode: "required")
        let ca = path("ca.pem"), otherCA = certs.appendingPathComponent("other/ca.pem").path
        let clientCert = "certificate: \(path("gateway-client.pem")), key: \(path("gateway-client-key.pem"))"
        let services = [
            route("tls", port: optional, tls: "{ ca: \(ca), serverName: localhost }"),
            route("tls-by-ip", port: optional, tls: "{ ca: \(ca) }"),
            route("mtls", port: required, tls: "{ ca: \(ca), \(clientCert), subjectAltNames: [\"\(Self.backendID)\"] }"),
            route("mtls-without-cert", port: required, tls: "{ ca: \(ca) }"),
            route("wrong-san", port: optional, tls: "{ ca: \(ca), subjectAltNames: [\"spiffe://example.org/ns/default/sa/other\"] }"),
            route("wrong-name", port: optional, tls: "{ ca: \(ca), serverName: other.example.com }"),
            route("untrusted", port: optional, tls: "{ ca: \(otherCA), serverName: localhost }"),
        ]
        let routes = ["tls", "tls-by-ip", "mtls", "mtls-without-cert", "wrong-san", "wrong-name", "untrusted"].map { name in
            """
              - name: \(name)
                match: { prefix: /\(name)/ }
                service: \(name)
            """
        }
        gateway = try PorticoProcess(config: "services:\n" + services.joined(separator: "\n") + "\nroutes:\n" + routes.joined(separator: "\n"))

        let plain = try Curl.run(["\(gateway.http)/tls/a"])
        XCTAssertEqual(plain.status, 200, plain.body)
        XCTAssertEqual(plain.body, "peer=none\n", "TLS without a client certificate")
        XCTAssertEqual(try Curl.run(["\(gateway.http)/tls-by-ip/a"]).status, 200, "an IP endpoint is checked against its IP SAN")
        let mutual = try Curl.run(["\(gateway.http)/mtls/a"])
        XCTAssertEqual(mutual.status, 200, mutual.body)
        XCTAssertEqual(mutual.body, "peer=\(Self.gatewayID)\n", "the upstream saw the gateway's certificate")
        for refused in ["mtls-without-cert", "wrong-san", "wrong-name", "untrusted"] {
            XCTAssertEqual(try Curl.run(["\(gateway.http)/\(refused)/a"]).status, 502, refused)
        }
        let admin = try Curl.run(["\(gateway.admin)/services"]).body
        XCTAssertTrue(admin.contains("\"tls\":true") || admin.contains("\"tls\" : true"), admin)
    }

    func testARotatedClientCertificateIsUsedWithoutARestart() throws {
        let required = try startServer(mode: "required")
        gateway = try PorticoProcess(config: """
            services:
              backend:
                endpoints: [127.0.0.1:\(required)]
                tls: { ca: \(path("ca.pem")), certificate: \(path("gateway-client.pem")), key: \(path("gateway-client-key.pem")) }
            routes:
              - match: { prefix: / }
                service: backend
            """)
        XCTAssertEqual(try Curl.run(["\(gateway.http)/a"]).body, "peer=\(Self.gatewayID)\n")
        // A new certificate, with another identity, written over the old files.
        let rotatedID = "spiffe://example.org/ns/default/sa/gateway-rotated"
        let issued = try runCommand(PorticoProcess.binary.path,
                                    ["certs", "issue", "gateway-client", "--spiffe", rotatedID, "--dir", certs.path])
        XCTAssertEqual(issued.status, 0, issued.output)
        XCTAssertTrue(eventually { (try? Curl.run(["\(self.gateway.http)/a"]).body) == "peer=\(rotatedID)\n" },
                      "new connections present the new certificate: \(gateway.stderr)")
    }

    func testAStalledHandshakeIsAConnectFailureWithinTheConnectTimeout() throws {
        // A peer that accepts the connection and never says a word.
        let silentPort = try freePort()
        servers.append(try SilentPeer.start(port: silentPort))
        gateway = try PorticoProcess(config: """
            services:
              backend:
                endpoints: [127.0.0.1:\(silentPort)]
                connectTimeout: 500ms
                tls: { ca: \(path("ca.pem")), serverName: localhost }
            routes:
              - match: { prefix: / }
                service: backend
                timeout: 10s
            """)
        let started = Date()
        XCTAssertEqual(try Curl.run(["\(gateway.http)/a"]).status, 502)
        // The route's 10 s against the 500 ms connect timeout: room for a slow machine's curl.
        XCTAssertLessThan(Date().timeIntervalSince(started), 6, "the handshake is bounded by connectTimeout, not the route timeout")
    }

    func testHealthChecksCheckTheUpstreamsNamesToo() throws {
        let optional = try startServer(mode: "optional")
        let check = "healthCheck: { path: /healthz, interval: 100ms, unhealthyThreshold: 2, healthyThreshold: 1 }"
        gateway = try PorticoProcess(config: """
            services:
              right:
                endpoints: [127.0.0.1:\(optional)]
                tls: { ca: \(path("ca.pem")), subjectAltNames: ["\(Self.backendID)"] }
                \(check)
              wrong:
                endpoints: [127.0.0.1:\(optional)]
                tls: { ca: \(path("ca.pem")), subjectAltNames: ["spiffe://example.org/ns/default/sa/other"] }
                \(check)
            routes:
              - match: { prefix: / }
                service: right
            """)
        func healthy(_ service: String) -> Bool? {
            guard let body = try? Curl.run(["\(gateway.admin)/services"]).body,
                  let json = try? JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any],
                  let services = json["services"] as? [[String: Any]],
                  let entry = services.first(where: { $0["name"] as? String == service }),
                  let endpoints = entry["endpoints"] as? [[String: Any]] else { return nil }
            return endpoints.first?["healthy"] as? Bool
        }
        XCTAssertTrue(eventually { healthy("wrong") == false }, "a check reaching the wrong identity fails")
        XCTAssertEqual(healthy("right"), true)
    }

    func testAMissingCertificateFileRejectsTheConfig() throws {
        gateway = try PorticoProcess(config: """
            services:
              backend: { endpoints: [\(upstream.address)] }
            routes:
              - match: { prefix: / }
                service: backend
            """)
        try gateway.writeConfig("""
            services:
              backend:
                endpoints: [\(upstream.address)]
                tls: { ca: /nonexistent/ca.pem }
            routes:
              - match: { prefix: / }
                service: backend
            """)
        let reload = try Curl.run(["-X", "POST", "\(gateway.admin)/reload"])
        XCTAssertEqual(reload.status, 400)
        XCTAssertTrue(reload.body.contains("services.backend.tls"), reload.body)
        XCTAssertEqual(try Curl.run(["\(gateway.http)/a"]).status, 200, "the last good config serves")
    }
}
