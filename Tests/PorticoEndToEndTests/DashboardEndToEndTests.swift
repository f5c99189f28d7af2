import Foundation
import XCTest

/// The admin dashboard in a real browser: headless Chromium (Debian's), driven over the DevTools
/// protocol by `Tests/Browser/dashboard_driver.py`, against the real binary serving the
/// repository's `Functions/hello` under load.
final class DashboardEndToEndTests: GatewayTestCase {
    /// Where screenshots go: `$PORTICO_ARTIFACTS` (CI keeps it), else a temporary folder.
    static var artifacts: URL {
        if let directory = ProcessInfo.processInfo.environment["PORTICO_ARTIFACTS"], !directory.isEmpty {
            return URL(fileURLWithPath: directory)
        }
        return FileManager.default.temporaryDirectory.appendingPathComponent("portico-artifacts")
    }

    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    func testDashboardShowsAFunctionScaleUpUnderLoadAndBackToZero() throws {
        let closedPort = try freePort()
        gateway = try PorticoProcess(config: """
            services:
              backend: { endpoints: [\(upstream.address)] }
              orders: { endpoints: [\(upstream.address), 127.0.0.1:\(closedPort)], connectTimeout: 1s,
                        outlierDetection: { consecutive5xx: 1, baseEjectionTime: 30s } }
            routes:
              - name: api
                match: { prefix: /api/ }
                service: backend
              - name: orders
                match: { prefix: /orders/ }
                service: orders
              - name: legacy
                match: { prefix: /legacy/ }
                redirect: { path: /api/ }
            """) { root in
            // The repository's example function, with a short idle timeout and the test's marker.
            let folder = root.appendingPathComponent("Functions/hello")
            try FileManager.default.createDirectory(at: folder.deletingLastPathComponent(), withIntermediateDirectories: true)
            try FileManager.default.copyItem(at: Self.repository.appendingPathComponent("Functions/hello"), to: folder)
            var manifest = try String(contentsOf: folder.appendingPathComponent("function.yaml"), encoding: .utf8)
            manifest = manifest
                .replacingOccurrences(of: "command: [\"python3\", \"main.py\"]", with: "command: [\"python3\", \"main.py\", \"\(self.marker)\"]")
                .replacingOccurrences(of: "idleTimeout: 30s", with: "idleTimeout: 2s")
                .replacingOccurrences(of: "concurrency: 4", with: "concurrency: 2")
            XCTAssertTrue(manifest.contains(self.marker) && manifest.contains("idleTimeout: 2s"), manifest)
            try manifest.write(to: folder.appendingPathComponent("function.yaml"), atomically: true, encoding: .utf8)
        }

        // The page and its files come from the binary.
        let page = try Curl.run(["\(gateway.admin)/"])
        XCTAssertEqual(page.status, 200)
        XCTAssertEqual(page.header("content-type"), "text/html; charset=utf-8")
        XCTAssertTrue(page.body.contains("<script src=\"/dashboard.js\">"), page.body)
        XCTAssertFalse(page.body.contains("http://") || page.body.contains("https://"), "nothing from elsewhere")
        XCTAssertEqual(try Curl.run(["\(gateway.admin)/dashboard.js"]).header("content-type"), "text/javascript; charset=utf-8")
        XCTAssertEqual(try Curl.run(["\(gateway.admin)/dashboard.css"]).status, 200)
        // The orders service gets a failure, so its dead endpoint shows as ejected.
        for _ in 0..<4 { _ = try Curl.run(["\(gateway.http)/orders/x"]) }

        // The feed itself: a snapshot as JSON objects, without escaped slashes.
        let snapshot = try firstSnapshot()
        XCTAssertFalse(snapshot.text.contains("\\/"), snapshot.text)
        let json = snapshot.json
        XCTAssertEqual((json["listeners"] as? [[String: Any]])?.compactMap { $0["name"] as? String }, ["public", "public-tls"])
        let routes = json["routes"] as? [[String: Any]] ?? []
        XCTAssertEqual(routes.first?["name"] as? String, "api")
        XCTAssertEqual((routes.first?["backends"] as? [[String: Any]])?.first?["kind"] as? String, "service")
        XCTAssertTrue(routes.contains { ($0["backends"] as? [[String: Any]])?.first?["name"] as? String == "hello" }, "\(routes)")
        let orders = (json["services"] as? [[String: Any]])?.first { $0["name"] as? String == "orders" }
        let endpoints = orders?["endpoints"] as? [[String: Any]] ?? []
        XCTAssertEqual(endpoints.map { $0["ejected"] as? Bool }, [false, true], "the dead endpoint is ejected: \(endpoints)")
        XCTAssertEqual((json["functions"] as? [[String: Any]])?.first?["name"] as? String, "hello")

        let artifacts = Self.artifacts
        try FileManager.default.createDirectory(at: artifacts, withIntermediateDirectories: true)
        for name in ["dashboard.png", "dashboard-idle.png", "dashboard-failure.png"] {
            try? FileManager.default.removeItem(at: artifacts.appendingPathComponent(name))
        }
        let driver = Self.repository.appendingPathComponent("Tests/Browser/dashboard_driver.py")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", driver.path, gateway.admin, gateway.http, "hello", "/hello/load", "/nowhere,/legacy/old", artifacts.path]
        let outputURL = gateway.directory.appendingPathComponent("driver.log")
        _ = FileManager.default.createFile(atPath: outputURL.path, contents: nil)
        process.standardOutput = try FileHandle(forWritingTo: outputURL)
        process.standardError = process.standardOutput
        try process.run()
        defer { if process.isRunning { process.terminate(); process.waitUntilExit() } }
        func output() -> String { (try? String(contentsOf: outputURL, encoding: .utf8)) ?? "" }
        XCTAssertTrue(eventually(timeout: 240) { !process.isRunning }, "the driver finishes: \(output())")
        print("dashboard driver:\n\(output())")
        XCTAssertEqual(process.terminationStatus, 0, output())
        let steps = output()
        XCTAssertTrue(steps.contains("step: hello with more than zero workers"), steps)
        XCTAssertTrue(steps.contains("step: hello with zero workers after its idle timeout"), steps)
        XCTAssertTrue(steps.contains("step: local reply 404"), steps)
        for name in ["dashboard.png", "dashboard-idle.png"] {
            let data = try Data(contentsOf: artifacts.appendingPathComponent(name))
            XCTAssertEqual(Array(data.prefix(8)), [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A], "\(name) is a PNG")
            XCTAssertGreaterThan(data.count, 10_000, "\(name) shows something")
        }
        print("dashboard screenshots in \(artifacts.path)")

        // The page is closed: its event stream and its local-reply subscription are gone.
        XCTAssertTrue(eventually {
            guard let body = try? Curl.run(["\(self.gateway.admin)/taps"]).body,
                  let json = try? JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any] else { return false }
            return json["count"] as? Int == 0 && (json["subscriptionsOnLoops"] as? [Int])?.allSatisfy { $0 == 0 } == true
        }, "no dashboard subscription outlives its page")
    }

    /// The first `event: snapshot` of `GET /dashboard/events`, read with curl.
    private func firstSnapshot(file: StaticString = #filePath, line: UInt = #line) throws -> (text: String, json: [String: Any]) {
        let output = gateway.directory.appendingPathComponent("events.out")
        _ = FileManager.default.createFile(atPath: output.path, contents: nil)
        let curl = Process()
        curl.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
        curl.arguments = ["-N", "--silent", "\(gateway.admin)/dashboard/events"]
        curl.standardOutput = try FileHandle(forWritingTo: output)
        try curl.run()
        defer { if curl.isRunning { curl.terminate(); curl.waitUntilExit() } }
        var data: String?
        XCTAssertTrue(eventually {
            let text = (try? String(contentsOf: output, encoding: .utf8)) ?? ""
            guard let start = text.range(of: "event: snapshot\ndata: "),
                  let end = text.range(of: "\n\n", range: start.upperBound..<text.endIndex) else { return false }
            data = String(text[start.upperBound..<end.lowerBound])
            return true
        }, "a snapshot comes at once", file: file, line: line)
        let text = try XCTUnwrap(data, file: file, line: line)
        let json = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any], file: file, line: line)
        return (text, json)
    }
}
