import Foundation
import JWTTestSupport
import XCTest

/// mTLS (strict and permissive), authorization by principal and by claim, and JWT
/// authentication through the real binary, with certificates made by `portico certs` and
/// tokens signed by keys the test generates. Each on a service route and a function route.
final class SecurityEndToEndTests: GatewayTestCase {
    static let orders = "spiffe://example.org/ns/default/sa/orders"
    static let billing = "spiffe://example.org/ns/default/sa/billing"
    let issuer = "https://auth.example.com"

    /// A function worker that answers with the request's headers, one `name: value` a line.
    static let headerEchoWorker = PythonWorker.script(
        body: #""".join(f"{k.lower()}: {v}\n" for k, v in self.headers.items())"#)

    /// The gateway's certificate, a CA, and client certificates for `orders` and `billing`,
    /// all made by `portico certs`.
    private func makeCertificates(in root: URL) throws {
        let binary = PorticoProcess.binary.path
        let dir = root.appendingPathComponent("certs").path
        for arguments in [
            ["certs", "init", "--dir", dir],
            ["certs", "issue", "gateway", "--dns", "localhost", "--ip", "127.0.0.1", "--dir", dir],
            ["certs", "issue", "orders", "--spiffe", Self.orders, "--dir", dir],
            ["certs", "issue", "billing", "--spiffe", Self.billing, "--dir", dir],
        ] {
            let result = try runCommand(binary, arguments)
            XCTAssertEqual(result.status, 0, result.output)
        }
        try writeFunction("echo", script: Self.headerEchoWorker, in: root)
    }

    private func certs(_ name: String) -> String { gateway.directory.appendingPathComponent("certs/\(name)").path }

    /// curl over TLS to the gateway, trusting the test CA, presenting `client`'s certificate.
    private func tls(_ path: String, client: String? = nil, _ extra: [String] = []) throws -> Curl.Result {
        var arguments = ["--cacert", certs("ca.pem")]
        if let client { arguments += ["--cert", certs("\(client).pem"), "--key", certs("\(client)-key.pem")] }
        return try Curl.run(arguments + extra + ["\(gateway.https)\(path)"])
    }

    private func routes(policies: String) -> String {
        """
        services:
          backend: { endpoints: [\(upstream.address)] }
        routes:
          - name: service
            match: { prefix: /service/ }
            service: backend
            \(policies)
          - name: function
            match: { prefix: /function/ }
            function: echo
            \(policies)
        """
    }

    private let principalPolicy = """
        policies:
          orders-only:
            authorization:
              rules:
                - from: { principals: ["\(orders)"] }
                  to: { methods: [GET] }
        """

    func testStrictMutualTLSSetsThePrincipalAndForwardedClientCert() throws {
        gateway = try PorticoProcess(
            config: principalPolicy + "\n" + routes(policies: "policies: [orders-only]"),
            tlsOptions: ["clientCA": "certs/ca.pem", "mode": "strict"], prepare: makeCertificates)

        let viaService = try tls("/service/a", client: "orders", ["-H", "x-forwarded-client-cert: By=spoofed;URI=spiffe://evil"])
        XCTAssertEqual(viaService.status, 200, viaService.errorOutput)
        let forwarded = try XCTUnwrap(upstream.lastRequestHeaders.first(name: "x-forwarded-client-cert"))
        XCTAssertTrue(forwarded.hasPrefix("Hash="), forwarded)
        XCTAssertTrue(forwarded.contains("Subject=\"CN=orders\""), forwarded)
        XCTAssertTrue(forwarded.contains("URI=\(Self.orders)"), forwarded)
        XCTAssertFalse(forwarded.contains("spoofed") || forwarded.contains("evil"), "a client's own header is replaced: \(forwarded)")
        XCTAssertEqual(upstream.lastRequestHeaders[canonicalForm: "x-forwarded-client-cert"].count, 1)

        let viaFunction = try tls("/function/a", client: "orders", ["--http2"])
        XCTAssertEqual(viaFunction.status, 200, viaFunction.errorOutput)
        XCTAssertTrue(viaFunction.body.contains("x-forwarded-client-cert: Hash="), viaFunction.body)
        XCTAssertTrue(viaFunction.body.contains("URI=\(Self.orders)"), viaFunction.body)

        // Another workload's valid certificate: a principal, but not one the rule allows.
        XCTAssertEqual(try tls("/service/a", client: "billing").status, 403)
        XCTAssertEqual(try tls("/function/a", client: "billing").status, 403)
        // No certificate: strict mode ends the handshake, so curl gets no HTTP answer at all.
        let anonymous = try tls("/service/a")
        XCTAssertEqual(anonymous.status, 0)
        XCTAssertNotEqual(anonymous.exitCode, 0)
        // A certificate from a CA the listener does not trust.
        let strangers = try runCommand(PorticoProcess.binary.path, ["certs", "init", "--dir", certs("other")])
        XCTAssertEqual(strangers.status, 0)
        _ = try runCommand(PorticoProcess.binary.path, ["certs", "issue", "orders", "--spiffe", Self.orders, "--dir", certs("other")])
        let untrusted = try Curl.run(["--cacert", certs("ca.pem"), "--cert", certs("other/orders.pem"),
                                      "--key", certs("other/orders-key.pem"), "\(gateway.https)/service/a"])
        XCTAssertEqual(untrusted.status, 0, "a certificate another CA signed is refused in the handshake")

        let metrics = try Curl.run(["\(gateway.admin)/metrics"]).body
        XCTAssertTrue(metrics.contains(#"portico_authz_denied_total{policy="orders-only"} 2"#), metrics)
        XCTAssertEqual(upstream.count(), 1, "refused requests never reach the backend")
    }

    func testPermissiveModeServesPlaintextAndCertlessClientsWithoutAPrincipal() throws {
        gateway = try PorticoProcess(
            config: principalPolicy + "\n" + routes(policies: "policies: [orders-only]") + """

              - name: open
                match: { prefix: /open/ }
                service: backend
            """,
            tlsOptions: ["clientCA": "certs/ca.pem", "mode": "permissive"], prepare: makeCertificates)

        XCTAssertEqual(try tls("/service/a", client: "orders").status, 200)
        XCTAssertEqual(try tls("/function/a", client: "orders").status, 200)
        // Without a certificate the connection is served, but it has no principal to allow.
        XCTAssertEqual(try tls("/service/a").status, 403)
        XCTAssertEqual(try tls("/function/a").status, 403)
        let certless = try tls("/open/a", client: nil, ["-H", "x-forwarded-client-cert: URI=\(Self.orders)"])
        XCTAssertEqual(certless.status, 200)
        XCTAssertNil(upstream.lastRequestHeaders.first(name: "x-forwarded-client-cert"),
                     "a client cannot claim an identity by header")
        // Plaintext HTTP/1.1 and h2c on the TLS port.
        let plaintext = "http://127.0.0.1:\(gateway.tlsPort)"
        XCTAssertEqual(try Curl.run(["\(plaintext)/open/a"]).status, 200)
        let h2c = try Curl.run(["--http2-prior-knowledge", "\(plaintext)/open/a"])
        XCTAssertEqual(h2c.status, 200)
        XCTAssertEqual(h2c.httpVersion, "2")
        XCTAssertEqual(try Curl.run(["\(plaintext)/service/a"]).status, 403)
        XCTAssertEqual(try Curl.run(["\(plaintext)/function/a"]).status, 403)
        XCTAssertEqual(try Curl.run(["-H", "x-forwarded-client-cert: URI=\(Self.orders)", "\(plaintext)/open/a"]).status, 200)
        XCTAssertNil(upstream.lastRequestHeaders.first(name: "x-forwarded-client-cert"))

        // Optional is not unverified: a certificate another CA signed is still refused.
        _ = try runCommand(PorticoProcess.binary.path, ["certs", "init", "--dir", certs("other")])
        _ = try runCommand(PorticoProcess.binary.path, ["certs", "issue", "orders", "--spiffe", Self.orders, "--dir", certs("other")])
        let untrusted = try Curl.run(["--cacert", certs("ca.pem"), "--cert", certs("other/orders.pem"),
                                      "--key", certs("other/orders-key.pem"), "\(gateway.https)/service/a"])
        XCTAssertEqual(untrusted.status, 0, "a certificate another CA signed fails the handshake")
    }

    func testRotatedCertificateServesNewConnectionsWithoutRestart() throws {
        gateway = try PorticoProcess(config: routes(policies: ""), prepare: makeCertificates)
        func servedSubject() throws -> String {
            try tls("/service/a", client: nil, ["--verbose"]).errorOutput
                .components(separatedBy: "\n").first { $0.contains("subject:") } ?? ""
        }
        let first = try servedSubject()
        XCTAssertTrue(first.contains("CN=gateway"), first)
        let dir = certs("")
        let issued = try runCommand(PorticoProcess.binary.path,
                                    ["certs", "issue", "rotated", "--dns", "localhost", "--ip", "127.0.0.1", "--dir", dir])
        XCTAssertEqual(issued.status, 0, issued.output)
        // Key first, then certificate, each by rename, as a secret mount updates files.
        try FileManager.default.removeItem(atPath: certs("gateway-key.pem"))
        try FileManager.default.moveItem(atPath: certs("rotated-key.pem"), toPath: certs("gateway-key.pem"))
        try FileManager.default.removeItem(atPath: certs("gateway.pem"))
        try FileManager.default.moveItem(atPath: certs("rotated.pem"), toPath: certs("gateway.pem"))
        XCTAssertTrue(eventually { (try? servedSubject().contains("CN=rotated")) == true },
                      "the new certificate serves within seconds: \(gateway.stderr)")

        // A broken certificate is refused; the last good one keeps serving.
        func rejections() -> Int { gateway.stderr.components(separatedBy: "TLS certificate change rejected").count - 1 }
        let before = rejections()
        try "not a certificate".write(toFile: certs("gateway.pem"), atomically: true, encoding: .utf8)
        XCTAssertTrue(eventually { rejections() > before }, gateway.stderr)
        XCTAssertTrue(try servedSubject().contains("CN=rotated"))
        XCTAssertEqual(try tls("/service/a").status, 200)
    }
}
