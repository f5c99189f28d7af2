import Foundation
import XCTest

/// TLS passthrough routed by SNI: two `openssl s_server` backends with certificates of their
/// own behind one `tcp:` listener, reached with `openssl s_client -servername`; the certificate
/// the client sees (and verifies) says which backend the name reached.
final class SNIPassthroughEndToEndTests: GatewayTestCase {
    private var children: [ChildServer] = []
    private var scratch: URL!
    private var strictPort = 0
    private var fallbackPort = 0

    override func setUpWithError() throws {
        try super.setUpWithError()
        scratch = FileManager.default.temporaryDirectory.appendingPathComponent("portico-sni-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        var backends: [String: Int] = [:]
        for name in ["alpha", "beta"] {
            try makeCertificate(in: scratch, name: name, subjectAltNames: [])
            let port = try freePort()
            children.append(try ChildServer("/usr/bin/openssl", [
                "s_server", "-accept", "127.0.0.1:\(port)", "-cert", path("\(name).pem"), "-key", path("\(name)-key.pem"),
                "-www", "-quiet",
            ], port: port))
            backends[name] = port
        }
        strictPort = try freePort()
        fallbackPort = try freePort()
        gateway = try PorticoProcess(config: """
            accessLog: { format: json }
            services:
              alpha: { endpoints: [127.0.0.1:\(backends["alpha"]!)] }
              beta: { endpoints: [127.0.0.1:\(backends["beta"]!)] }
            tcp:
              - name: strict
                address: 127.0.0.1:\(strictPort)
                helloTimeout: 1s
                sni:
                  - { names: [alpha.example], service: alpha }
                  - { names: ["*.beta.example"], service: beta }
              - name: fallback
                address: 127.0.0.1:\(fallbackPort)
                sni: [{ names: [beta.example], service: beta }]
                default: alpha
            """)
    }

    override func tearDown() {
        for child in children { child.stop() }
        try? FileManager.default.removeItem(at: scratch)
        super.tearDown()
    }

    private func path(_ file: String) -> String { scratch.appendingPathComponent(file).path }

    /// The backend whose certificate a handshake through `port` showed, with the certificate
    /// verified against that backend's own (so the TLS session is the backend's, end to end);
    /// nil when the gateway closed the connection instead.
    private func backendReached(port: Int, serverName: String?, file: StaticString = #filePath, line: UInt = #line) throws -> String? {
        var arguments = ["s_client", "-connect", "127.0.0.1:\(port)"]
        arguments += serverName.map { ["-servername", $0] } ?? ["-noservername"]
        let output = try runBounded("/usr/bin/openssl", arguments, timeout: 20).output
        guard let range = output.range(of: "subject=") else { return nil }
        let subject = output[range.upperBound...].prefix { !$0.isNewline }.replacingOccurrences(of: " ", with: "")
        guard subject.hasPrefix("CN="), subject.hasSuffix("-backend") else {
            XCTFail("unexpected subject \(subject)", file: file, line: line)
            return nil
        }
        let name = String(subject.dropFirst(3).dropLast("-backend".count))
        let verified = try runBounded("/usr/bin/openssl", arguments + ["-CAfile", path("\(name).pem"), "-verify_return_error"],
                                      timeout: 20).output
        XCTAssertTrue(verified.contains("Verify return code: 0 (ok)"), verified, file: file, line: line)
        return name
    }

    func testExactAndWildcardNamesReachTheirBackends() throws {
        XCTAssertEqual(try backendReached(port: strictPort, serverName: "alpha.example"), "alpha")
        XCTAssertEqual(try backendReached(port: strictPort, serverName: "ALPHA.Example"), "alpha", "names ignore case")
        XCTAssertEqual(try backendReached(port: strictPort, serverName: "db.beta.example"), "beta")
        XCTAssertEqual(try backendReached(port: strictPort, serverName: "other.beta.example"), "beta")
        XCTAssertTrue(eventually {
            self.gateway.accessLogLines.contains { $0["server_name"] as? String == "db.beta.example" && $0["backend"] as? String == "beta" }
        }, gateway.stdout)
    }

    func testUnknownAndMissingNamesAreClosedOrGoToTheDefault() throws {
        // No default: closed.
        XCTAssertNil(try backendReached(port: strictPort, serverName: "unknown.example"))
        XCTAssertNil(try backendReached(port: strictPort, serverName: "a.b.beta.example"), "a wildcard is one label")
        XCTAssertNil(try backendReached(port: strictPort, serverName: "beta.example"), "nor the domain itself")
        XCTAssertNil(try backendReached(port: strictPort, serverName: nil))
        XCTAssertTrue(eventually { self.gateway.accessLogLines.contains { $0["end"] as? String == "no_route" } }, gateway.stdout)
        // With a default: there.
        XCTAssertEqual(try backendReached(port: fallbackPort, serverName: "unknown.example"), "alpha")
        XCTAssertEqual(try backendReached(port: fallbackPort, serverName: nil), "alpha")
        XCTAssertEqual(try backendReached(port: fallbackPort, serverName: "beta.example"), "beta")
    }

    func testNonTLSMalformedAndSlowClientsAreClosedAndTheListenerKeepsServing() throws {
        // Both closed at once, well before the 1 s hello timeout, without a byte.
        var started = Date()
        let plain = try RawSocket(port: strictPort)
        plain.send("GET / HTTP/1.1\r\nHost: alpha.example\r\n\r\n")
        XCTAssertTrue(plain.peerClosed())
        XCTAssertLessThan(Date().timeIntervalSince(started), 0.8)

        // A handshake record whose ClientHello says its session id is 200 bytes long.
        let malformed = try RawSocket(port: strictPort)
        var hello: [UInt8] = [1, 0, 0, 38, 3, 3] + Array(repeating: 7, count: 32) + [200]
        hello += [0, 0, 0]
        started = Date()
        malformed.send([22, 3, 1, 0, UInt8(hello.count)] + hello)
        XCTAssertTrue(malformed.peerClosed())
        XCTAssertLessThan(Date().timeIntervalSince(started), 0.8)

        // Never finishes its hello: closed after `helloTimeout`.
        let slow = try RawSocket(port: strictPort, timeout: 10)
        slow.send([22, 3, 1, 0, 200, 1])
        started = Date()
        XCTAssertTrue(slow.peerClosed())
        XCTAssertGreaterThan(Date().timeIntervalSince(started), 0.5)
        XCTAssertLessThan(Date().timeIntervalSince(started), 8)

        let ends = Set(gateway.accessLogLines.compactMap { $0["end"] as? String })
        XCTAssertTrue(eventually {
            let ends = Set(self.gateway.accessLogLines.compactMap { $0["end"] as? String })
            return ends.contains("bad_hello") && ends.contains("hello_timeout")
        }, "\(ends)")
        XCTAssertEqual(try backendReached(port: strictPort, serverName: "alpha.example"), "alpha")
    }
}

/// A self-signed certificate `NAME.pem` with key `NAME-key.pem` in `directory`, subject
/// `CN=NAME-backend` (or `NAME-site` with subjectAltNames, for clients that check the name).
func makeCertificate(in directory: URL, name: String, subjectAltNames: [String]) throws {
    var arguments = ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2",
                     "-keyout", directory.appendingPathComponent("\(name)-key.pem").path,
                     "-out", directory.appendingPathComponent("\(name).pem").path,
                     "-subj", "/CN=\(name)-\(subjectAltNames.isEmpty ? "backend" : "site")"]
    if !subjectAltNames.isEmpty {
        arguments += ["-addext", "subjectAltName=" + subjectAltNames.map { "DNS:\($0)" }.joined(separator: ",")]
    }
    let result = try runBounded("/usr/bin/openssl", arguments)
    guard result.status == 0 else { throw HarnessError.socket("openssl req failed: \(result.output)") }
}
