import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// The request-edge defects independent testing found (issue 14, items 1 to 4): each test sends
/// what the tester sent, through the real binary, and checks what a client and the backend see.
final class EdgeDefectsEndToEndTests: GatewayTestCase {
    private var serviceRoute: String {
        """
        services:
          backend: { endpoints: [\(upstream.address)] }
        routes:
          - name: other-host
            match: { host: other.example, prefix: / }
            directResponse: { status: 200, body: "other host\\n" }
          - match: { prefix: / }
            service: backend
        """
    }

    // MARK: 1. HTTP/2 connection errors

    /// After a connection error the client's bytes are never buffered: the GOAWAY is flushed,
    /// the connection closes, and the gateway's memory stays where it was.
    func testHTTP2ConnectionErrorFlushesGoAwayThenClosesOverH2C() throws {
        gateway = try PorticoProcess(config: serviceRoute)
        try assertConnectionErrorCloses(port: gateway.httpPort, tls: false)
    }

    func testHTTP2ConnectionErrorFlushesGoAwayThenClosesOverTLS() throws {
        gateway = try PorticoProcess(config: serviceRoute)
        try assertConnectionErrorCloses(port: gateway.tlsPort, tls: true)
    }

    private func assertConnectionErrorCloses(port: Int, tls: Bool, file: StaticString = #filePath, line: UInt = #line) throws {
        let before = try XCTUnwrap(residentKiB(gateway.process.processIdentifier))
        // 128 MiB of zeros after the error: without the fix all of it is kept.
        let result = try runPython(Self.connectionErrorScript, [String(port), tls ? gateway.certificateAuthority : "-",
                                                                String(128 << 20)])
        XCTAssertEqual(result.status, 0, result.output, file: file, line: line)
        let report = result.output
        XCTAssertTrue(report.contains("goaway=1"), "a GOAWAY with PROTOCOL_ERROR reaches the client: \(report)", file: file, line: line)
        XCTAssertTrue(report.contains("closed=1"), "the gateway closes the connection: \(report)", file: file, line: line)
        let sent = Int(report.split(separator: " ").first { $0.hasPrefix("sent=") }?.dropFirst(5) ?? "") ?? -1
        XCTAssertLessThan(sent, 128 << 20, "the connection was closed before the client could send it all", file: file, line: line)
        let after = try XCTUnwrap(residentKiB(gateway.process.processIdentifier))
        XCTAssertLessThan(after - before, 32 * 1024, "RSS grew from \(before) KiB to \(after) KiB", file: file, line: line)
        // The gateway still serves.
        XCTAssertEqual(try Curl.run(["--http2-prior-knowledge", "\(gateway.http)/ok"]).status, 200, file: file, line: line)
    }

    /// Preface, an empty SETTINGS, a PING on stream 1 (a connection error, RFC 9113 6.7); then
    /// reads until a GOAWAY arrives, then sends zeros until the socket fails or `limit` went.
    /// Prints `goaway=0|1 closed=0|1 sent=N`; `closed` only for an end of stream or a reset,
    /// never for a time-out.
    static let connectionErrorScript = #"""
        import socket, ssl, sys, time
        port, ca, limit = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        if ca != "-":
            context = ssl.create_default_context(cafile=ca)
            context.set_alpn_protocols(["h2"])
            s = context.wrap_socket(s, server_hostname="localhost")
            assert s.selected_alpn_protocol() == "h2", s.selected_alpn_protocol()
        s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes(3) + b"\x04" + bytes(5)
                  + b"\x00\x00\x08\x06\x00\x00\x00\x00\x01" + bytes(8))
        data, goaway, closed = b"", 0, 0
        deadline = time.time() + 10
        while not goaway and time.time() < deadline:
            try:
                chunk = s.recv(65536)
            except (socket.timeout, OSError):
                break
            if not chunk:
                closed = 1
                break
            data += chunk
            offset = 0
            while offset + 9 <= len(data):
                length = int.from_bytes(data[offset:offset + 3], "big")
                if offset + 9 + length > len(data):
                    break
                if data[offset + 3] == 7 and int.from_bytes(data[offset + 13:offset + 17], "big") != 0:
                    goaway = 1
                offset += 9 + length
        sent = 0
        zeros = bytes(65536)
        deadline = time.time() + 20
        # A send blocks once the gateway stops reading; over TLS the close comes after NIOSSL's
        # close_notify wait (5 s), so a blocked send waits longer than that for its error.
        s.settimeout(15)
        try:
            while sent < limit and time.time() < deadline:
                s.sendall(zeros)
                sent += len(zeros)
        except socket.timeout:
            pass
        except OSError:
            closed = 1
        if not closed:
            s.settimeout(5)
            try:
                while s.recv(65536):
                    pass
                closed = 1
            except socket.timeout:
                pass
            except OSError:
                closed = 1
        print(f"goaway={goaway} closed={closed} sent={sent}")
        """#

    // MARK: 2. Upgrades

    /// `Upgrade: h2c` is never tunnelled: the request reaches the backend without its upgrade
    /// headers, and the HTTP/2 bytes sent after it never reach anything.
    func testH2CUpgradeIsServedAsAPlainRequest() throws {
        gateway = try PorticoProcess(config: serviceRoute)
        let socket = try RawSocket(port: gateway.httpPort)
        socket.send("GET /public HTTP/1.1\r\nHost: api.example\r\nConnection: Upgrade, HTTP2-Settings\r\n"
                    + "Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n")
        // What an h2c client sends after the 101 it hopes for: a request for another path.
        socket.send("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        let bytes = socket.receive()
        let responses = RawHTTP.parseResponses(bytes)
        XCTAssertEqual(responses.map(\.status), [200], String(decoding: bytes, as: UTF8.self))
        let body = responses.first?.body ?? ""
        XCTAssertTrue(body.contains("GET /public"), body)
        XCTAssertFalse(body.contains("upgrade:"), "the backend sees no Upgrade: \(body)")
        XCTAssertFalse(body.contains("http2-settings:"), body)
        XCTAssertEqual(responses.first?.header("connection"), "close")
        XCTAssertEqual(upstream.count(), 1, "nothing after the request reaches the backend")
    }

    /// WebSocket stays tunnelled by default; a route with `upgrades: []` serves it plainly.
    func testUpgradesFollowTheRouteAllowList() throws {
        gateway = try PorticoProcess(config: """
            services:
              backend: { endpoints: [\(upstream.address)] }
            routes:
              - match: { prefix: /no-upgrades/ }
                service: backend
                upgrades: []
              - match: { prefix: / }
                service: backend
            """)
        let handshake = { (path: String) -> ClientResponse? in
            try? RawHTTP.request(port: self.gateway.httpPort,
                                 "GET \(path) HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
                                 + "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
        }
        let allowed = try XCTUnwrap(handshake("/chat/ws"))
        XCTAssertEqual(allowed.status, 101)
        let refused = try XCTUnwrap(handshake("/no-upgrades/ws"))
        XCTAssertEqual(refused.status, 200, "served as a plain request")
        XCTAssertFalse(refused.body.contains("upgrade:"), refused.body)
    }

    func testH2CInUpgradesIsAConfigError() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("portico-check-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let config = directory.appendingPathComponent("gateway.yaml")
        try """
            listeners: [{ address: 127.0.0.1:0 }]
            services: { backend: { endpoints: [127.0.0.1:9] } }
            routes:
              - match: { prefix: / }
                service: backend
                upgrades: [websocket, h2c]
            """.write(to: config, atomically: true, encoding: .utf8)
        let result = try runCommand(PorticoProcess.binary.path, ["check", "--config", config.path], currentDirectory: directory)
        XCTAssertEqual(result.status, 1)
        XCTAssertTrue(result.output.contains("gateway.yaml:6:"), result.output)
        XCTAssertTrue(result.output.contains("routes[0].upgrades[1]"), result.output)
        XCTAssertTrue(result.output.contains("h2c is never proxied"), result.output)
    }

    // MARK: 3. Host

    func testDuplicateOrInvalidHostIs400() throws {
        gateway = try PorticoProcess(config: serviceRoute)
        for host in ["Host: a.example\r\nHost: b.example", "Host: a, b", "Host: a/b", "Host: a@b", "Host: a b", "Host: [::1"] {
            let response = try RawHTTP.request(port: gateway.httpPort, "GET /x HTTP/1.1\r\n\(host)\r\n\r\n")
            XCTAssertEqual(response.status, 400, host)
        }
        XCTAssertEqual(upstream.count(), 0, "none of them was forwarded")
        for target in ["http://a,b/x", "http://a:1:2/x", "http://a:99999/x"] {
            let response = try RawHTTP.request(port: gateway.httpPort, "GET \(target) HTTP/1.1\r\nHost: a\r\n\r\n")
            XCTAssertEqual(response.status, 400, "an absolute-form authority meets Host's grammar: \(target)")
        }
        for host in ["Host: a.example:8080", "Host: [::1]:8080", "Host: 127.0.0.1"] {
            let response = try RawHTTP.request(port: gateway.httpPort, "GET /x HTTP/1.1\r\n\(host)\r\n\r\n")
            XCTAssertEqual(response.status, 200, host)
        }
    }

    /// An absolute-form target wins over `Host` (RFC 9112 3.2.2), for routing and upstream.
    func testAbsoluteFormTargetIsRoutedByItsAuthority() throws {
        gateway = try PorticoProcess(config: serviceRoute)
        let other = try RawHTTP.request(port: gateway.httpPort, "GET http://other.example/x HTTP/1.1\r\nHost: api.example\r\n\r\n")
        XCTAssertEqual(other.body, "other host\n")
        let forwarded = try RawHTTP.request(port: gateway.httpPort, "GET http://api.example/x HTTP/1.1\r\nHost: other.example\r\n\r\n")
        XCTAssertEqual(forwarded.status, 200)
        XCTAssertEqual(upstream.lastRequestHeaders[canonicalForm: "host"], ["api.example"], "one Host, the target's")
    }

    // MARK: 4. Transfer codings and underscores

    func testTransferCodingsPorticoDoesNotImplementAre501AndMalformedListsAre400() throws {
        gateway = try PorticoProcess(config: serviceRoute)
        let cases: [(String, Int)] = [
            ("Transfer-Encoding: gzip, chunked", 501),
            ("Transfer-Encoding: identity, chunked", 501),
            ("Transfer-Encoding: ,chunked", 400),
            ("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked", 400),
            ("Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked", 400),
        ]
        for (header, status) in cases {
            let response = try RawHTTP.request(port: gateway.httpPort,
                                               "POST /x HTTP/1.1\r\nHost: a\r\n\(header)\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
            XCTAssertEqual(response.status, status, header)
            XCTAssertEqual(response.header("connection"), "close", header)
        }
        let http10 = try RawHTTP.request(port: gateway.httpPort,
                                         "POST /x HTTP/1.0\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
        XCTAssertEqual(http10.status, 400, "Transfer-Encoding on HTTP/1.0")
        XCTAssertEqual(upstream.count(), 0, "none of them was forwarded")
        let plain = try RawHTTP.request(port: gateway.httpPort,
                                        "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
        XCTAssertEqual(plain.status, 200)
        XCTAssertTrue(plain.body.contains("body=5"), plain.body)
    }

    /// A chunk size that fits 64 bits but not 63 is accepted by llhttp; nginx refuses it, and
    /// so does Portico, before any of the body goes upstream. (The request's head may have
    /// gone up already, as request bodies stream; the upstream connection is then closed
    /// in the middle of that request, so the upstream never sees it complete.)
    /// Slowloris: a head trickled a line at a time gets 408 once `requestHeadersTimeout` has
    /// passed since its first byte, and the connection closes; a client that sends its head
    /// whole is served on the same gateway meanwhile.
    func testAHeadSentTooSlowlyIs408AndTheConnectionCloses() throws {
        gateway = try PorticoProcess(config: serviceRoute + "\nlimits:\n  requestHeadersTimeout: 1s\n")
        // Reads wait at most 200 ms: that paces the trickle below, with no sleep.
        let slow = try RawSocket(port: gateway.httpPort, timeout: 0.2)
        let started = Date()
        slow.send("GET /slow HTTP/1.1\r\nHost: a\r\n")
        var answer: [UInt8] = []
        var lines = 0
        // A line at a time: the connection is never idle, but the head never ends.
        while answer.isEmpty && Date().timeIntervalSince(started) < 8 {
            lines += 1
            slow.send("X-\(lines): 1\r\n")
            XCTAssertEqual(try Curl.run(["\(gateway.http)/fast"]).status, 200, "a client with a whole head is served meanwhile")
            answer = slow.receive { $0.count >= 12 }
        }
        let elapsed = Date().timeIntervalSince(started)
        XCTAssertEqual(String(decoding: answer.prefix(12), as: UTF8.self), "HTTP/1.1 408", String(decoding: answer, as: UTF8.self))
        XCTAssertGreaterThanOrEqual(elapsed, 1, "not before the timeout")
        XCTAssertLessThan(elapsed, 6, "soon after it")
        var closed = false
        while !closed && Date().timeIntervalSince(started) < 10 { closed = slow.peerClosed() }
        XCTAssertTrue(closed, "the connection closes behind the 408")
        XCTAssertEqual(upstream.count("completed"), lines, "the whole heads reached the upstream, the slow one never")
    }

    func testChunkSizeOverflowingSixtyThreeBitsIs400() throws {
        gateway = try PorticoProcess(config: serviceRoute)
        for size in ["8000000000000000", "ffffffffffffffff", "00000000000000000008000000000000000"] {
            let response = try RawHTTP.request(port: gateway.httpPort,
                                               "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n\(size)\r\nhello")
            XCTAssertEqual(response.status, 400, size)
        }
        // Behind a request that is fine, in the same packet: that one is answered first.
        let socket = try RawSocket(port: gateway.httpPort)
        socket.send("GET /first HTTP/1.1\r\nHost: a\r\n\r\n"
                    + "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n8000000000000000\r\nhello")
        XCTAssertEqual(RawHTTP.parseResponses(socket.receive()).map(\.status), [200, 400])
        // `Upgrade` without `Connection: upgrade` is no upgrade, and no way around the check.
        let upgrade = try RawHTTP.request(port: gateway.httpPort, "POST /x HTTP/1.1\r\nHost: a\r\nUpgrade: foo\r\n"
                                          + "Transfer-Encoding: chunked\r\n\r\n8000000000000000\r\nhello")
        XCTAssertEqual(upgrade.status, 400)
        XCTAssertEqual(upstream.count("completed"), 1, "only the first request reached the upstream whole")
        let largest = try RawHTTP.request(port: gateway.httpPort,
                                          "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n000005\r\nhello\r\n0\r\n\r\n")
        XCTAssertEqual(largest.status, 200, "leading zeros are not an overflow")
    }

    func testUnderscoreHeadersAreDroppedAndRefusedWithABody() throws {
        gateway = try PorticoProcess(config: serviceRoute)
        let get = try RawHTTP.request(port: gateway.httpPort, "GET /x HTTP/1.1\r\nHost: a\r\nX_Debug: 1\r\nX-Kept: 1\r\n\r\n")
        XCTAssertEqual(get.status, 200)
        XCTAssertFalse(get.body.lowercased().contains("x_debug"), "dropped: \(get.body)")
        XCTAssertTrue(get.body.contains("x-kept: 1"), get.body)
        for framing in ["Content-Length: 5", "Transfer-Encoding: chunked"] {
            let body = framing.hasPrefix("Content") ? "hello" : "5\r\nhello\r\n0\r\n\r\n"
            let response = try RawHTTP.request(port: gateway.httpPort,
                                               "POST /x HTTP/1.1\r\nHost: a\r\n\(framing)\r\nContent_Length: 0\r\n\r\n\(body)")
            XCTAssertEqual(response.status, 400, framing)
        }
        XCTAssertEqual(upstream.count(), 1)
    }

    func testUnderscoreHeadersFollowTheListenerOption() throws {
        gateway = try PorticoProcess(config: serviceRoute, listenerOptions: ["headersWithUnderscores": "allow"])
        let kept = try RawHTTP.request(port: gateway.httpPort, "POST /x HTTP/1.1\r\nHost: a\r\nX_Debug: 1\r\nContent-Length: 2\r\n\r\nhi")
        XCTAssertEqual(kept.status, 200)
        XCTAssertTrue(kept.body.lowercased().contains("x_debug: 1"), kept.body)
        // Allowed, but never as a spelling of a field Portico writes and a backend trusts.
        let spelled = try RawHTTP.request(port: gateway.httpPort, "GET /x HTTP/1.1\r\nHost: a\r\n"
                                          + "X_Forwarded_Client_Cert: By=forged\r\nX_Forwarded_For: 6.6.6.6\r\nX_Kept: 1\r\n\r\n")
        XCTAssertEqual(spelled.status, 200)
        XCTAssertFalse(spelled.body.lowercased().contains("x_forwarded_client_cert"), spelled.body)
        XCTAssertFalse(spelled.body.contains("6.6.6.6"), spelled.body)
        XCTAssertTrue(spelled.body.lowercased().contains("x_kept: 1"), spelled.body)
        gateway.stop()
        gateway = try PorticoProcess(config: serviceRoute, listenerOptions: ["headersWithUnderscores": "reject"])
        let refused = try RawHTTP.request(port: gateway.httpPort, "GET /x HTTP/1.1\r\nHost: a\r\nX_Debug: 1\r\n\r\n")
        XCTAssertEqual(refused.status, 400)
    }

    // MARK: Support

    private func residentKiB(_ pid: Int32) -> Int? {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
        for line in status.split(separator: "\n") where line.hasPrefix("VmRSS:") {
            return Int(line.split(separator: " ", omittingEmptySubsequences: true)[1])
        }
        return nil
    }

    private func runPython(_ script: String, _ arguments: [String]) throws -> (status: Int32, output: String) {
        try runCommand("/usr/bin/env", ["python3", "-c", script] + arguments)
    }
}
