import Foundation
import XCTest

/// Request mirroring through the real binary: copies reach the shadow service with `Host`
/// suffixed `-shadow`, their answers are dropped, and a broken shadow changes nothing.
final class MirrorEndToEndTests: GatewayTestCase {
    private var shadow: TestUpstream!

    override func setUpWithError() throws {
        try super.setUpWithError()
        shadow = try TestUpstream(name: "shadow")
    }

    override func tearDown() {
        shadow?.stop()
        super.tearDown()
    }

    private func config(shadowAddress: String, percent: Double = 100) -> String {
        """
        services:
          backend: { endpoints: [\(upstream.address)] }
          shadow: { endpoints: [\(shadowAddress)], connectTimeout: 300ms }
        routes:
          - name: service
            match: { prefix: /service/ }
            service: backend
            mirror: { service: shadow, percent: \(percent) }
          - name: function
            match: { prefix: /function/ }
            function: hello
            mirror: { service: shadow }
        """
    }

    /// The gateway's connections to the shadow service: open, and idle among them.
    private func shadowConnections() -> (open: Int, idle: Int)? {
        guard let body = try? Curl.run(["\(gateway.admin)/services"]).body,
              let json = try? JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any],
              let services = json["services"] as? [[String: Any]],
              let shadow = services.first(where: { $0["name"] as? String == "shadow" }),
              let endpoint = (shadow["endpoints"] as? [[String: Any]])?.first,
              let open = endpoint["openConnections"] as? Int, let idle = endpoint["idleConnections"] as? Int else { return nil }
        return (open, idle)
    }

    private func prepare(_ root: URL) throws {
        try writeFunction("hello", script: FunctionEndToEndTests.workerScript, in: root)
    }

    func testCopiesReachTheShadowWithItsOwnHostAndBody() throws {
        gateway = try PorticoProcess(config: config(shadowAddress: shadow.address), prepare: prepare)
        let body = try bodyFile(100_000)
        let response = try Curl.run(["--data-binary", "@\(body)", "\(gateway.http)/service/upload"])
        XCTAssertEqual(response.status, 200)
        XCTAssertEqual(response.header("x-upstream"), "backend", "the client gets the real backend's answer")
        XCTAssertTrue(eventually { self.shadow.count() == 1 })
        let seen = shadow.lastRequestHeaders
        XCTAssertEqual(seen.first(name: "host"), "127.0.0.1-shadow:\(gateway.httpPort)")
        XCTAssertEqual(seen.first(name: "content-length"), "100000")
        XCTAssertEqual(upstream.lastRequestHeaders.first(name: "host"), "127.0.0.1:\(gateway.httpPort)", "the original is untouched")

        XCTAssertEqual(try Curl.run(["\(gateway.http)/function/a"]).status, 200)
        XCTAssertTrue(eventually { self.shadow.count() == 2 }, "a function route mirrors too")
    }

    func testAShadowThatFailsOrIsSlowChangesNothing() throws {
        // A shadow that accepts connections and never answers: the client does not wait for it.
        let silentPort = try freePort()
        let silent = try SilentPeer.start(port: silentPort)
        defer { silent.terminate(); silent.waitUntilExit() }
        gateway = try PorticoProcess(config: config(shadowAddress: "127.0.0.1:\(silentPort)"), prepare: prepare)
        // A client that waited would wait for the shadow's timeout, the route's 15 s; the bound
        // leaves room for a function's cold start on a slow machine.
        for path in ["/service/a", "/function/a", "/service/b"] {
            let started = Date()
            XCTAssertEqual(try Curl.run(["\(gateway.http)\(path)"]).status, 200)
            XCTAssertLessThan(Date().timeIntervalSince(started), 8, "\(path) does not wait for the shadow")
        }

        // A shadow that is down: every request still succeeds.
        let downPort = try freePort()
        try gateway.writeConfig(config(shadowAddress: "127.0.0.1:\(downPort)"))
        XCTAssertEqual(try Curl.run(["-X", "POST", "\(gateway.admin)/reload"]).status, 200)
        for _ in 0..<5 {
            XCTAssertEqual(try Curl.run(["\(gateway.http)/service/a"]).status, 200)
            XCTAssertEqual(try Curl.run(["\(gateway.http)/function/a"]).status, 200)
        }
    }

    func testPercentMirrorsAShare() throws {
        gateway = try PorticoProcess(config: config(shadowAddress: shadow.address, percent: 50), prepare: prepare)
        for _ in 0..<60 { XCTAssertEqual(try Curl.run(["\(gateway.http)/service/a"]).status, 200) }
        // The copies still on their way are done once the shadow's connections are all idle.
        XCTAssertTrue(eventually { self.shadowConnections().map { $0.open == $0.idle } ?? false })
        // 60 draws at 50 %: outside 12...48 happens with a probability below one in a million.
        XCTAssertTrue((12...48).contains(shadow.count()), "\(shadow.count()) of 60 mirrored")
        XCTAssertEqual(upstream.count(), 60)
    }
}
