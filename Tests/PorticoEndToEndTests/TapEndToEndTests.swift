import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// `portico tap` and admin `GET /tap` against the real binary: lines for matching requests
/// only, `--limit`, a client that stops reading, and no subscription left once a client goes.
final class TapEndToEndTests: GatewayTestCase {
    func startGateway() throws {
        let closedPort = try freePort()
        gateway = try PorticoProcess(config: """
            services:
              backend: { endpoints: [\(upstream.address)] }
              dead: { endpoints: [127.0.0.1:\(closedPort)], connectTimeout: 1s }
            routes:
              - name: api
                match: { prefix: /api/ }
                service: backend
                rewrite: { prefix: / }
                retries: { attempts: 2, retryOn: [5xx] }
              - name: other
                match: { prefix: /other/ }
                service: backend
                rewrite: { prefix: / }
              - name: broken
                match: { prefix: /broken/ }
                service: dead
            """)
    }

    struct Taps: Decodable {
        struct Tap: Decodable {
            var id: Int
            var kind: String
            var route: String?
            var status: String?
            var delivered: Int
            var dropped: Int
        }

        var count: Int
        var subscriptionsOnLoops: [Int]
        var taps: [Tap]
    }

    func taps() throws -> Taps {
        let response = try Curl.run(["\(gateway.admin)/taps"])
        XCTAssertEqual(response.status, 200, response.body)
        return try JSONDecoder().decode(Taps.self, from: Data(response.body.utf8))
    }

    /// Every loop holds `count` taps (what the request path reads), and the admin API agrees.
    func waitForTaps(_ count: Int, file: StaticString = #filePath, line: UInt = #line) {
        var last: Taps?
        XCTAssertTrue(eventually {
            last = try? self.taps()
            return last?.count == count && last?.subscriptionsOnLoops.allSatisfy({ $0 == count }) == true
        }, "expected \(count) taps on every loop: \(String(describing: last))", file: file, line: line)
    }

    func testTapBinaryStreamsTheRoutesRequestsAndStopsAtItsLimit() throws {
        try startGateway()
        let output = gateway.directory.appendingPathComponent("tap.out")
        _ = FileManager.default.createFile(atPath: output.path, contents: nil)
        let tap = Process()
        tap.executableURL = PorticoProcess.binary
        tap.arguments = ["tap", "--admin", "127.0.0.1:\(gateway.adminPort)", "--route", "api", "--limit", "3"]
        tap.standardOutput = try FileHandle(forWritingTo: output)
        tap.standardError = tap.standardOutput
        try tap.run()
        defer { if tap.isRunning { tap.terminate(); tap.waitUntilExit() } }
        waitForTaps(1)

        let traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
        XCTAssertEqual(try Curl.run(["\(gateway.http)/other/x"]).status, 200)
        XCTAssertEqual(try Curl.run(["-H", "traceparent: 00-\(traceID)-00f067aa0ba902b7-01",
                                     "\(gateway.http)/api/flaky/1/tap-key"]).status, 200)
        XCTAssertEqual(try Curl.run(["\(gateway.http)/other/y"]).status, 200)
        XCTAssertEqual(try Curl.run(["\(gateway.http)/api/plain"]).status, 200)
        XCTAssertEqual(try Curl.run(["\(gateway.http)/api/status/404"]).status, 404)

        XCTAssertTrue(eventually { !tap.isRunning }, "the tap stops after --limit 3 lines")
        XCTAssertEqual(tap.terminationStatus, 0)
        let lines = ((try? String(contentsOf: output, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
        XCTAssertEqual(lines.count, 3, "\(lines)")
        guard lines.count == 3 else { return }
        XCTAssertTrue(lines.allSatisfy { $0.contains(" route=api ") }, "only the api route: \(lines)")
        XCTAssertTrue(lines[0].hasPrefix("200 GET /api/flaky/1/tap-key "), lines[0])
        XCTAssertTrue(lines[0].contains(" retries=1 "), "the 503 was retried once: \(lines[0])")
        XCTAssertTrue(lines[0].hasSuffix(" trace=\(traceID)"), "the client's trace id: \(lines[0])")
        XCTAssertTrue(lines[0].contains(" backend=backend upstream=\(upstream.address) "), lines[0])
        XCTAssertTrue(lines[1].hasPrefix("200 GET /api/plain "), lines[1])
        XCTAssertTrue(lines[1].hasSuffix(" retries=0 trace=-"), "no traceparent: \(lines[1])")
        XCTAssertTrue(lines[2].hasPrefix("404 GET /api/status/404 "), lines[2])
        waitForTaps(0)

        // What a user gets wrong is said plainly.
        let badStatus = try runCommand(PorticoProcess.binary.path, ["tap", "--admin", "127.0.0.1:\(gateway.adminPort)", "--status", "6xx"])
        XCTAssertNotEqual(badStatus.status, 0)
        XCTAssertTrue(badStatus.output.contains("status filter '6xx'"), badStatus.output)
        let closedPort = try freePort()
        let nobody = try runCommand(PorticoProcess.binary.path, ["tap", "--admin", "127.0.0.1:\(closedPort)"])
        XCTAssertEqual(nobody.status, 1)
        XCTAssertTrue(nobody.output.contains("is the gateway running?"), nobody.output)
    }

    func testStatusFilterOverCurlAndTheSubscriptionEndsWithTheClient() throws {
        try startGateway()
        let bad = try Curl.run(["\(gateway.admin)/tap?status=6xx"])
        XCTAssertEqual(bad.status, 400)
        XCTAssertTrue(bad.body.contains("status filter '6xx'"), bad.body)
        XCTAssertEqual(try Curl.run(["\(gateway.admin)/tap?colour=red"]).status, 400)

        let output = gateway.directory.appendingPathComponent("curl-tap.out")
        _ = FileManager.default.createFile(atPath: output.path, contents: nil)
        let curl = Process()
        curl.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
        curl.arguments = ["-N", "--silent", "\(gateway.admin)/tap?status=5xx,404"]
        curl.standardOutput = try FileHandle(forWritingTo: output)
        try curl.run()
        defer { if curl.isRunning { curl.terminate(); curl.waitUntilExit() } }
        func text() -> String { (try? String(contentsOf: output, encoding: .utf8)) ?? "" }
        XCTAssertTrue(eventually { text().contains(": tap ") && text().contains(" listening") },
                      "the stream says when every loop has the tap: \(text())")

        XCTAssertEqual(try Curl.run(["\(gateway.http)/other/ok"]).status, 200)
        XCTAssertEqual(try Curl.run(["\(gateway.http)/other/status/503"]).status, 503)
        XCTAssertEqual(try Curl.run(["\(gateway.http)/other/status/404"]).status, 404)
        XCTAssertEqual(try Curl.run(["\(gateway.http)/broken/x"]).status, 502, "its endpoint refuses connections")
        XCTAssertEqual(try Curl.run(["\(gateway.http)/other/status/201"]).status, 201)

        var events: [[String: Any]] = []
        XCTAssertTrue(eventually {
            events = text().components(separatedBy: "\n").filter { $0.hasPrefix("data: ") }.compactMap { line in
                try? JSONSerialization.jsonObject(with: Data(line.dropFirst(6).utf8)) as? [String: Any]
            }
            return events.count >= 3
        }, "three matching requests: \(text())")
        XCTAssertEqual(events.map { $0["status"] as? Int }, [503, 404, 502], "only 5xx and 404, in order: \(text())")
        XCTAssertEqual(events.map { $0["path"] as? String }, ["/other/status/503", "/other/status/404", "/broken/x"])
        XCTAssertEqual(events.map { $0["route"] as? String }, ["other", "other", "broken"])
        XCTAssertEqual(events[0]["upstream"] as? String, upstream.address)
        XCTAssertEqual(events[0]["local"] as? Bool, false)
        XCTAssertEqual(events[2]["upstream"] as? String, "-", "nothing answered: the gateway did")
        XCTAssertEqual(events[2]["local"] as? Bool, true)
        for key in ["method", "backend", "duration_us", "retries", "trace_id", "time_unix_ms", "request_id"] {
            XCTAssertNotNil(events[0][key], "every line has \(key): \(events[0])")
        }
        XCTAssertTrue(events[0]["reason"] is NSNull, "a backend's answer has no local-reply reason")
        XCTAssertEqual(events[2]["reason"] as? String, "upstream_connect_failed", "why the gateway answered")
        XCTAssertFalse(text().contains("\\/"), "no escaped slashes")
        waitForTaps(1)

        curl.terminate()
        curl.waitUntilExit()
        waitForTaps(0)
        // And with no one tapping, requests still go (and nothing is left on the loops).
        XCTAssertEqual(try Curl.run(["\(gateway.http)/other/after"]).status, 200)
    }

    func testAClientThatStopsReadingNeitherSlowsNorStallsRequests() throws {
        try startGateway()
        // A tap client that reads nothing, with a small receive window.
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        XCTAssertGreaterThanOrEqual(fd, 0)
        defer { close(fd) }
        var small: Int32 = 4096
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(gateway.adminPort).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        XCTAssertEqual(connected, 0)
        let request = Array("GET /tap HTTP/1.1\r\nHost: admin\r\n\r\n".utf8)
        XCTAssertEqual(request.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }, request.count)
        waitForTaps(1)

        // 2,000 requests with long paths (about 5 MB of tap lines): far more than the socket
        // and the connection's buffers take.
        let count = 2000
        // One curl, one keep-alive connection, one request after the other.
        let long = String(repeating: "p", count: 2400)
        let urls = (0..<count).map { "url = \"\(gateway.http)/api/\(long)/\($0)\"\noutput = \"/dev/null\"\n" }.joined()
        let config = gateway.directory.appendingPathComponent("load.curl")
        try urls.write(to: config, atomically: true, encoding: .utf8)
        let started = Date()
        let (status, output) = try runCommand("/usr/bin/curl", ["--silent", "--max-time", "120", "--write-out", "%{http_code}\n", "--config", config.path])
        let elapsed = Date().timeIntervalSince(started)
        XCTAssertEqual(status, 0, output)
        let statuses = output.split(separator: "\n")
        XCTAssertEqual(statuses.count, count, "every request answered")
        XCTAssertTrue(statuses.allSatisfy { $0 == "200" }, "every request served: \(Set(statuses))")
        XCTAssertLessThan(elapsed, 90, "bounded: the requests did not wait for the tap")
        print("2,000 requests with a stalled tap: \(String(format: "%.2f", elapsed)) s")

        var listing: Taps?
        XCTAssertTrue(eventually {
            listing = try? self.taps()
            guard let tap = listing?.taps.first else { return false }
            return tap.dropped > 0 && tap.delivered + tap.dropped == count
        }, "the lines the client could not take were dropped and counted: \(String(describing: listing))")

        close(fd)
        waitForTaps(0)
    }

    func testTheGatewayStopsCleanlyWithATapAndADashboardOpen() throws {
        try startGateway()
        var clients: [Process] = []
        defer { for client in clients where client.isRunning { client.terminate(); client.waitUntilExit() } }
        for path in ["/tap", "/dashboard/events"] {
            let client = Process()
            client.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
            client.arguments = ["-N", "--silent", "--output", "/dev/null", "\(gateway.admin)\(path)"]
            try client.run()
            clients.append(client)
        }
        waitForTaps(2)  // the tap, and the dashboard's local replies
        XCTAssertEqual(try Curl.run(["\(gateway.http)/other/x"]).status, 200)
        gateway.signal(SIGTERM)
        // Strict NIO (as the harness runs it) crashes on work scheduled on a loop that stopped.
        XCTAssertEqual(gateway.waitForExit(timeout: 30), 0, gateway.stderr)
        XCTAssertFalse(gateway.stderr.contains("Fatal error"), gateway.stderr)
        XCTAssertTrue(eventually { clients.allSatisfy { !$0.isRunning } }, "the streams end with the gateway")
    }
}
