import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// Reload, drain and the command line, against the real binary.
final class LifecycleEndToEndTests: XCTestCase {
    var upstream: TestUpstream!
    var gateway: PorticoProcess!

    override func setUpWithError() throws {
        upstream = try TestUpstream(name: "backend")
    }

    override func tearDown() {
        gateway?.stop()
        upstream?.stop()
    }

    func routes(body: String) -> String {
        """
        services:
          backend: { endpoints: [\(upstream.address)] }
        routes:
          - match: { path: /version }
            directResponse: { status: 200, body: "\(body)" }
          - match: { prefix: / }
            service: backend
        """
    }

    func testBadReloadIsReportedAndTheOldConfigKeepsServing() throws {
        gateway = try PorticoProcess(config: routes(body: "one"))
        XCTAssertEqual(try Curl.run(["\(gateway.http)/version"]).body, "one")

        // A keep-alive connection opened before the reload must survive it.
        let keptAlive = try RawSocket(port: gateway.httpPort)
        keptAlive.send("GET /version HTTP/1.1\r\nHost: x\r\n\r\n")
        XCTAssertEqual(RawHTTP.parseResponses(keptAlive.receive { RawHTTP.completeResponses(in: $0) >= 1 }).first?.body, "one")

        try gateway.writeConfig("""
            services:
              backend: { endpoints: [\(upstream.address)] }
            routes:
              - match: { prefix: / }
                service: nowhere
            """)
        let rejected = try Curl.run(["-X", "POST", "\(gateway.admin)/reload"])
        XCTAssertEqual(rejected.status, 400)
        XCTAssertTrue(rejected.body.contains("gateway.yaml:"), rejected.body)
        XCTAssertTrue(rejected.body.contains("unknown service 'nowhere'"), rejected.body)
        XCTAssertEqual(try Curl.run(["\(gateway.http)/version"]).body, "one", "the last good config keeps serving")
        XCTAssertEqual(try Curl.run(["\(gateway.http)/proxied"]).status, 200)

        try gateway.writeConfig(routes(body: "two"))
        let accepted = try Curl.run(["-X", "POST", "\(gateway.admin)/reload"])
        XCTAssertEqual(accepted.status, 200, accepted.body)
        XCTAssertEqual(try Curl.run(["\(gateway.http)/version"]).body, "two")

        keptAlive.send("GET /version HTTP/1.1\r\nHost: x\r\n\r\n")
        let afterReload = RawHTTP.parseResponses(keptAlive.receive { RawHTTP.completeResponses(in: $0) >= 1 })
        XCTAssertEqual(afterReload.first?.body, "two", "the same connection now serves the new config")
    }

    func testReloadOnFileChangeAndOnSIGHUP() throws {
        gateway = try PorticoProcess(config: routes(body: "one"))
        try gateway.writeConfig(routes(body: "from-file-change"))
        XCTAssertTrue(eventually { (try? Curl.run(["\(self.gateway.http)/version"]).body) == "from-file-change" },
                      "the watcher reloads a changed file")

        try gateway.writeConfig(routes(body: "from-sighup"))
        gateway.signal(SIGHUP)
        XCTAssertTrue(eventually { (try? Curl.run(["\(self.gateway.http)/version"]).body) == "from-sighup" })
        XCTAssertNil(gateway.waitForExit(timeout: 0.2), "SIGHUP reloads; it does not stop the gateway")
    }

    /// The requests below take 3 s, so that SIGTERM surely comes while they are in flight,
    /// however long a slow machine takes to see them reach the upstream.
    func testGracefulShutdownFinishesInFlightRequests() throws {
        gateway = try PorticoProcess(config: routes(body: "one"))
        let inFlight = try RawSocket(port: gateway.httpPort, timeout: 10)
        inFlight.send("GET /slow/3000/x HTTP/1.1\r\nHost: x\r\n\r\n")
        XCTAssertTrue(eventually { self.upstream.count() == 1 }, "the request reached the upstream")

        gateway.signal(SIGTERM)
        let responses = RawHTTP.parseResponses(inFlight.receive { RawHTTP.completeResponses(in: $0) >= 1 })
        XCTAssertEqual(responses.first?.status, 200, "the in-flight request finished during the drain")
        XCTAssertTrue(inFlight.peerClosed(), "then the connection closed")
        XCTAssertEqual(gateway.waitForExit(timeout: 10), 0, gateway.stderr)
        XCTAssertFalse(gateway.stderr.contains("ERROR"), gateway.stderr)
        XCTAssertThrowsError(try RawSocket(port: gateway.httpPort), "nothing listens any more")
    }

    /// Every listener drains, not only the first: the TLS listener's in-flight request finishes
    /// too. (One quiescing helper took only the first listener's connections; the others were
    /// cut when the loops stopped, and NIO's strict mode crashed the process then.)
    func testGracefulShutdownFinishesAnInFlightRequestOnTheTLSListener() throws {
        gateway = try PorticoProcess(config: routes(body: "one"))
        let arguments = ["--cacert", gateway.certificateAuthority, "\(gateway.https)/slow/3000/tls"]
        let finished = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var result: Curl.Result?
        Thread.detachNewThread {
            result = try? Curl.run(arguments, timeout: 10)
            finished.signal()
        }
        XCTAssertTrue(eventually { self.upstream.count() == 1 }, "the request reached the upstream")

        gateway.signal(SIGTERM)
        XCTAssertEqual(finished.wait(timeout: .now() + 15), .success, "curl finished")
        XCTAssertEqual(result?.status, 200, result?.errorOutput ?? "no result")
        XCTAssertEqual(result?.exitCode, 0, "the response arrived whole: \(result?.errorOutput ?? "")")
        XCTAssertEqual(gateway.waitForExit(timeout: 10), 0, gateway.stderr)
    }

    /// A connection still in its TLS handshake has no request to finish: the drain closes it
    /// at once instead of waiting out the drain timeout (30 s here) or the idle timeout.
    func testGracefulShutdownClosesAConnectionStillInItsTLSHandshake() throws {
        gateway = try PorticoProcess(config: routes(body: "one"))
        let stalled = try RawSocket(port: gateway.tlsPort, timeout: 10)
        stalled.send([22, 3, 1, 0, 200])  // a ClientHello's record header, and no more
        // Accepted, not still in the listen backlog when the listener closes (which resets it).
        XCTAssertTrue(eventually {
            (try? Curl.run(["\(self.gateway.admin)/metrics"]).body)?.contains("portico_downstream_connections 1") ?? false
        }, "the gateway has the connection")

        gateway.signal(SIGTERM)
        XCTAssertTrue(stalled.peerClosed(), "closed by the drain, well within the drain timeout")
        XCTAssertEqual(gateway.waitForExit(timeout: 10), 0, gateway.stderr)
    }

    /// HTTP/2 drains differently (GOAWAY, then the connection manager closes the connection
    /// once its last stream ends): the in-flight stream's response must still arrive whole.
    func testGracefulShutdownFinishesAnInFlightHTTP2Stream() throws {
        gateway = try PorticoProcess(config: routes(body: "one"))
        let url = "\(gateway.http)/slow/3000/h2"
        let finished = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var result: Curl.Result?
        Thread.detachNewThread {
            result = try? Curl.run(["--http2-prior-knowledge", url], timeout: 10)
            finished.signal()
        }
        XCTAssertTrue(eventually { self.upstream.count() == 1 }, "the request reached the upstream")

        gateway.signal(SIGTERM)
        XCTAssertEqual(finished.wait(timeout: .now() + 15), .success, "curl finished")
        XCTAssertEqual(result?.status, 200, result?.errorOutput ?? "no result")
        XCTAssertEqual(result?.httpVersion, "2")
        XCTAssertEqual(result?.exitCode, 0, "the response arrived whole: \(result?.errorOutput ?? "")")
        XCTAssertEqual(gateway.waitForExit(timeout: 10), 0, gateway.stderr)
    }

    func testCheckPrintsFileLineKeyAndExitsNonZero() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("portico-check-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let bad = directory.appendingPathComponent("bad.yaml")
        try """
            listeners:
              - name: public
                address: 127.0.0.1:8080
            routes:
              - match: { prefx: /v1/ }
                service: legacy
            """.write(to: bad, atomically: true, encoding: .utf8)
        let result = try runCommand(PorticoProcess.binary.path,
                                    ["check", "--config", bad.path, "--functions", directory.appendingPathComponent("none").path])
        XCTAssertEqual(result.status, 1)
        XCTAssertTrue(result.output.contains("\(bad.path):5:14: routes[0].match.prefx: unknown key 'prefx'"), result.output)
        XCTAssertTrue(result.output.contains("\(bad.path):6:14: routes[0].service: unknown service 'legacy'"), result.output)

        let good = directory.appendingPathComponent("good.yaml")
        try """
            listeners:
              - name: public
                address: 127.0.0.1:8080
            routes:
              - match: { prefix: / }
                directResponse: { status: 200 }
              - name: never
                match: { prefix: /v1/ }
                directResponse: { status: 204 }
            """.write(to: good, atomically: true, encoding: .utf8)
        let clean = try runCommand(PorticoProcess.binary.path,
                                   ["check", "--config", good.path, "--functions", directory.appendingPathComponent("none").path])
        XCTAssertEqual(clean.status, 0, clean.output)
        XCTAssertTrue(clean.output.contains("\(good.path):7:5: routes[1]: warning: route 'never' never matches"), clean.output)

        let routes = try runCommand(PorticoProcess.binary.path,
                                    ["routes", "--config", good.path, "--functions", directory.appendingPathComponent("none").path])
        XCTAssertEqual(routes.status, 0)
        let lines = routes.output.split(separator: "\n")
        XCTAssertEqual(lines.count, 2)
        XCTAssertTrue(lines[0].hasPrefix("0 "), routes.output)
        XCTAssertTrue(lines[1].contains("never"), routes.output)
    }

    func testServeRefusesABadConfigWithFileAndLine() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("portico-serve-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let bad = directory.appendingPathComponent("gateway.yaml")
        try "listeners:\n  - name: public\n    address: nowhere\n".write(to: bad, atomically: true, encoding: .utf8)
        let result = try runCommand(PorticoProcess.binary.path, ["serve", "--config", bad.path])
        XCTAssertNotEqual(result.status, 0)
        XCTAssertTrue(result.output.contains("\(bad.path):3:14: listeners[0].address:"), result.output)
    }
}

/// Polls `condition` until it holds or `timeout` passes. The default is generous on purpose:
/// it costs nothing when the condition comes, and a slow or busy machine (a worker's cold
/// start, a build, a process exit) must not fail a test that would pass given the time.
func eventually(timeout: TimeInterval = 20, _ condition: () -> Bool) -> Bool {
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
        if condition() { return true }
        usleep(50_000)
    }
    return condition()
}
