import Foundation
import XCTest

/// A TLS listener with several certificates, chosen by the client's SNI: curl, trusting only
/// one site's self-signed certificate at a time, reaches the listener under each name.
final class ListenerCertificatesEndToEndTests: GatewayTestCase {
    private var scratch: URL!

    override func tearDown() {
        try? FileManager.default.removeItem(at: scratch)
        super.tearDown()
    }

    func testEachNameGetsItsCertificateAndOthersTheDefault() throws {
        scratch = FileManager.default.temporaryDirectory.appendingPathComponent("portico-certs-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        try makeCertificate(in: scratch, name: "alpha", subjectAltNames: ["alpha.example"])
        try makeCertificate(in: scratch, name: "beta", subjectAltNames: ["*.beta.example"])
        func path(_ file: String) -> String { scratch.appendingPathComponent(file).path }
        gateway = try PorticoProcess(config: """
            routes:
              - match: { path: /ping }
                directResponse: { status: 200, body: "pong" }
            """, tlsOptions: ["certificates": """
            [{ names: [alpha.example], certificate: "\(path("alpha.pem"))", key: "\(path("alpha-key.pem"))" }, \
            { names: ["*.beta.example"], certificate: "\(path("beta.pem"))", key: "\(path("beta-key.pem"))" }]
            """])
        func get(_ host: String, trusting ca: String) throws -> Curl.Result {
            try Curl.run(["--cacert", ca, "--resolve", "\(host):\(gateway.tlsPort):127.0.0.1", "-v",
                          "https://\(host):\(gateway.tlsPort)/ping"])
        }
        let alpha = try get("alpha.example", trusting: path("alpha.pem"))
        XCTAssertEqual(alpha.status, 200, alpha.errorOutput)
        XCTAssertTrue(alpha.errorOutput.contains("CN=alpha-site"), alpha.errorOutput)
        let beta = try get("www.beta.example", trusting: path("beta.pem"))
        XCTAssertEqual(beta.status, 200, beta.errorOutput)
        XCTAssertTrue(beta.errorOutput.contains("CN=beta-site"), beta.errorOutput)
        // Trusting the other site's certificate fails: each name really got its own.
        XCTAssertNotEqual(try get("alpha.example", trusting: path("beta.pem")).exitCode, 0)
        XCTAssertNotEqual(try get("www.beta.example", trusting: path("alpha.pem")).exitCode, 0)
        // Any other name, and none, get the listener's own certificate.
        let other = try get("localhost", trusting: gateway.certificateAuthority)
        XCTAssertEqual(other.status, 200, other.errorOutput)
        XCTAssertEqual(try Curl.run(["--cacert", gateway.certificateAuthority, "\(gateway.https)/ping"]).body, "pong")
    }
}
