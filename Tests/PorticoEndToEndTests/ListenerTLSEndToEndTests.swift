import Foundation
import XCTest

/// The TLS 1.2 cipher suites a real TLS listener offers and the order it picks them in, seen
/// by `openssl s_client` (issue 14 item 6). The gateway's development certificate has an EC
/// P-256 key, so the ECDSA suites are the ones that can be negotiated.
final class ListenerTLSEndToEndTests: GatewayTestCase {
    private let routes = """
        routes:
          - match: { path: /ping }
            directResponse: { status: 200, body: "pong" }
        """

    /// The suite a TLS 1.2 handshake agreed on when the client offers `ciphers` (OpenSSL's
    /// syntax, in the client's order of preference); nil when the server refused them all.
    private func negotiatedSuite(_ ciphers: String, file: StaticString = #filePath, line: UInt = #line) throws -> String? {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        // SECLEVEL=0: so the client offers whatever it is told to, and a refusal is the server's.
        process.arguments = ["s_client", "-connect", "127.0.0.1:\(gateway.tlsPort)", "-servername", "localhost",
                             "-tls1_2", "-cipher", ciphers + ":@SECLEVEL=0"]
        process.standardInput = FileHandle.nullDevice  // s_client ends after the handshake at end of input
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let killer = DispatchWorkItem { if process.isRunning { process.terminate() } }
        DispatchQueue.global().asyncAfter(deadline: .now() + 20, execute: killer)
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        killer.cancel()
        // "New, TLSv1.2, Cipher is ECDHE-ECDSA-AES128-GCM-SHA256", or "Cipher is (NONE)".
        guard let range = text.range(of: "Cipher is ") else {
            XCTFail("no handshake summary from openssl: \(text)", file: file, line: line)
            return nil
        }
        let suite = text[range.upperBound...].prefix { !$0.isNewline }
        return suite == "(NONE)" ? nil : String(suite)
    }

    func testTheDefaultOffersOnlyAEADSuitesInTheServersOrder() throws {
        gateway = try PorticoProcess(config: routes)
        // The CBC suites the old default offered, and others: refused.
        for cbc in ["ECDHE-ECDSA-AES128-SHA", "ECDHE-ECDSA-AES256-SHA", "ECDHE-ECDSA-AES128-SHA256", "AES128-SHA", "AES128-GCM-SHA256"] {
            XCTAssertNil(try negotiatedSuite(cbc), "\(cbc) is not offered")
        }
        // Each ECDHE AEAD suite on its own: accepted.
        for aead in ["ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-ECDSA-CHACHA20-POLY1305"] {
            XCTAssertEqual(try negotiatedSuite(aead), aead)
        }
        // The client prefers ChaCha20 and AES-256; the server's first choice, AES-128-GCM, wins.
        XCTAssertEqual(try negotiatedSuite("ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES128-GCM-SHA256"),
                       "ECDHE-ECDSA-AES128-GCM-SHA256")
        XCTAssertEqual(try negotiatedSuite("ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES256-GCM-SHA384"),
                       "ECDHE-ECDSA-AES256-GCM-SHA384")
        // TLS 1.3 and HTTP still work.
        let response = try Curl.run(["--cacert", gateway.certificateAuthority, "\(gateway.https)/ping"])
        XCTAssertEqual(response.status, 200)
        XCTAssertEqual(response.body, "pong")
    }

    func testTheCipherSuitesOptionSetsTheListAndItsOrder() throws {
        gateway = try PorticoProcess(
            config: routes,
            tlsOptions: ["cipherSuites": "[ECDHE-ECDSA-CHACHA20-POLY1305, ECDHE-ECDSA-AES128-SHA]"])
        // The server's order, not the client's.
        XCTAssertEqual(try negotiatedSuite("ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-CHACHA20-POLY1305"), "ECDHE-ECDSA-CHACHA20-POLY1305")
        // A CBC suite an operator asks for is offered: the same client that the default refuses.
        XCTAssertEqual(try negotiatedSuite("ECDHE-ECDSA-AES128-SHA"), "ECDHE-ECDSA-AES128-SHA")
        // A default suite left out of the list is not.
        XCTAssertNil(try negotiatedSuite("ECDHE-ECDSA-AES128-GCM-SHA256"))
        let response = try Curl.run(["--cacert", gateway.certificateAuthority, "--tls-max", "1.2", "\(gateway.https)/ping"])
        XCTAssertEqual(response.status, 200, response.errorOutput)
    }
}
