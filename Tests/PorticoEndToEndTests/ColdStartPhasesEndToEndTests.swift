import Foundation
import XCTest

/// A cold start in phases: the histograms per phase and the wait for a worker, labelled with
/// the function and its revision, and the phases in the access-log line of the request that
/// caused the start.
final class ColdStartPhasesEndToEndTests: XCTestCase {
    var gateway: PorticoProcess!

    override func tearDown() {
        gateway?.stop()
    }

    func testTheRequestThatCausedAColdStartLogsItsPhasesAndTheMetricsCountThem() throws {
        gateway = try PorticoProcess(config: "routes: []") { root in
            let folder = root.appendingPathComponent("Functions/hello")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            try PythonWorker.script(body: #""hi\n""#).write(to: folder.appendingPathComponent("worker.py"), atomically: true, encoding: .utf8)
            try "command: [python3, worker.py]\n".write(to: folder.appendingPathComponent("function.yaml"), atomically: true, encoding: .utf8)
        }
        XCTAssertEqual(try Curl.run(["\(gateway.http)/function/hello/cold"]).status, 200, gateway.stderr)
        XCTAssertEqual(try Curl.run(["\(gateway.http)/function/hello/warm"]).status, 200)

        var lines: [[String: Any]] = []
        XCTAssertTrue(eventually {
            lines = self.gateway.stdout.split(separator: "\n").compactMap {
                try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
            }
            return lines.count >= 2
        }, gateway.stdout)
        let cold = try XCTUnwrap(lines.first { $0["uri"] as? String == "/function/hello/cold" })
        let phases = try XCTUnwrap(cold["cold_start"] as? [String: Any], "\(cold)")
        let spawn = try XCTUnwrap(phases["spawn_us"] as? Int)
        let startToReady = try XCTUnwrap(phases["start_to_ready_us"] as? Int)
        let firstResponse = try XCTUnwrap(phases["first_response_us"] as? Int)
        let wait = try XCTUnwrap(phases["wait_us"] as? Int)
        XCTAssertGreaterThan(startToReady, 0, "a Python worker takes time to start")
        XCTAssertGreaterThan(firstResponse, 0)
        XCTAssertGreaterThanOrEqual(wait, spawn + startToReady, "the request waited through the start: \(phases)")
        let warm = try XCTUnwrap(lines.first { $0["uri"] as? String == "/function/hello/warm" })
        XCTAssertNil(warm["cold_start"], "a warm request has no cold start")

        let revision = try XCTUnwrap(gateway.functionEntry("hello")?["revision"] as? String)
        let metrics = try Curl.run(["\(gateway.admin)/metrics"]).body
        let labels = "function=\"hello\",revision=\"\(revision)\""
        for line in [
            "faas_coldstarts_total{\(labels)} 1",
            "faas_init_duration_seconds_count{\(labels)} 1",
            "portico_function_cold_start_phase_seconds_count{\(labels),phase=\"spawn\"} 1",
            "portico_function_cold_start_phase_seconds_count{\(labels),phase=\"start_to_ready\"} 1",
            "portico_function_cold_start_phase_seconds_count{\(labels),phase=\"first_response\"} 1",
            "portico_function_worker_wait_seconds_count{\(labels)} 2",
        ] {
            XCTAssertTrue(metrics.contains(line), "\(line) in\n\(metrics)")
        }
    }

    /// The connection the supervisor found the worker ready with carries the request that
    /// waited for it: the worker accepts one connection for its first request, not a probe's
    /// that only closes and then the gateway's. (A Python server starts a thread for each.)
    func testTheFirstRequestUsesTheConnectionThatFoundTheWorkerReady() throws {
        let counting = """
            import os, socket
            s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", int(os.environ["PORT"]))); s.listen(16)
            accepted = 0
            while True:
                c, _ = s.accept(); accepted += 1
                data = b""
                while b"\\r\\n\\r\\n" not in data:
                    chunk = c.recv(65536)
                    if not chunk: break
                    data += chunk
                if data:
                    body = f"connections {accepted}\\n".encode()
                    c.sendall(b"HTTP/1.1 200 OK\\r\\ncontent-length: %d\\r\\n\\r\\n" % len(body) + body)
                c.close()
            """
        gateway = try PorticoProcess(config: "routes: []") { root in
            let folder = root.appendingPathComponent("Functions/counting")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            try counting.write(to: folder.appendingPathComponent("worker.py"), atomically: true, encoding: .utf8)
            // `-S`: no site packages. The worker must be up before the gateway's own fallback
            // probe (100 ms), or that probe finds it first; a loaded CI machine took 104 ms once.
            try "command: [python3, -S, worker.py]\n".write(to: folder.appendingPathComponent("function.yaml"), atomically: true, encoding: .utf8)
        }
        let first = try Curl.run(["\(gateway.http)/function/counting/"])
        XCTAssertEqual(first.status, 200, gateway.stderr)
        let ready = gateway.stderr.split(separator: "\n").first { $0.contains("worker ready") } ?? ""
        XCTAssertTrue(ready.contains("probe=supervisor"), String(ready))
        // Where the kernel refuses pidfd_getfd the gateway says so once and connects itself.
        let handedOver = !gateway.stderr.contains("the kernel refuses pidfd_getfd")
        XCTAssertEqual(first.body, handedOver ? "connections 1\n" : "connections 2\n", gateway.stderr)
        // The worker closed that connection after answering: the next request opens another.
        XCTAssertEqual(try Curl.run(["\(gateway.http)/function/counting/"]).body, handedOver ? "connections 2\n" : "connections 3\n")
    }
}
