import Foundation
import Logging
import NIOCore
import NIOPosix
@testable import PorticoFunctions
import Prometheus
import XCTest

/// The registry against a real functions folder and real worker processes.
final class FunctionRegistryTests: XCTestCase {
    private var root: URL!
    private var loops: MultiThreadedEventLoopGroup!

    override func setUpWithError() throws {
        root = FileManager.default.temporaryDirectory.appendingPathComponent("portico-registry-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        loops = MultiThreadedEventLoopGroup(numberOfThreads: 2)
    }

    override func tearDown() async throws {
        try? await loops.shutdownGracefully()
        try? FileManager.default.removeItem(at: root)
    }

    /// A Python worker answering 200 on `$PORT`; `version` changes the folder's content.
    private func writeFunction(_ name: String, version: Int) throws {
        let folder = root.appendingPathComponent(name)
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        try """
            import http.server, os
            VERSION = \(version)
            class Handler(http.server.BaseHTTPRequestHandler):
                def do_GET(self):
                    self.send_response(200)
                    self.send_header("content-length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok")
                def log_message(self, *args):
                    pass
            http.server.HTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
            """.write(to: folder.appendingPathComponent("worker.py"), atomically: true, encoding: .utf8)
        try "command: [\"python3\", \"worker.py\"]\nminWorkers: 1\n"
            .write(to: folder.appendingPathComponent("function.yaml"), atomically: true, encoding: .utf8)
    }

    /// The private copies of revisions that are still around (serving, warming up or draining).
    private func revisionCopies() -> [String] {
        let shared = root.appendingPathComponent(RevisionCopies.folderName).path
        let own = (try? FileManager.default.contentsOfDirectory(atPath: shared)) ?? []
        return own.flatMap { folder in
            ((try? FileManager.default.contentsOfDirectory(atPath: shared + "/" + folder)) ?? []).map { folder + "/" + $0 }
        }
    }

    /// A redeploy retires the serving revision: once the new one is ready, the old one drains,
    /// its worker stops and its copy goes. The registry hands the drain's completion callback
    /// to the revision on the revision's home loop: it used to assign it from its own queue,
    /// racing the home loop, and `FunctionInstance` now checks every assignment's thread, so
    /// that version of `retire` stops this test at the assignment.
    func testARedeployRetiresTheOldRevisionAndShutdownStopsTheNewOne() async throws {
        try writeFunction("hello", version: 1)
        let registry = FunctionRegistry(directory: root.path, loops: Array(loops.makeIterator()),
                                        registry: PrometheusCollectorRegistry(), logger: Logger(label: "registry-test"))
        await registry.deployNow()
        let first = try XCTUnwrap(registry.published.functions["hello"]?.revision)
        XCTAssertEqual(revisionCopies().count, 1)

        try writeFunction("hello", version: 2)
        await registry.deployNow()
        let taken = await eventually { registry.published.functions["hello"]?.revision != first }
        XCTAssertTrue(taken, "the new revision takes over once its worker is ready")
        let retired = await eventually { self.revisionCopies().count == 1 }
        XCTAssertTrue(retired, "the old revision's copy is removed once it has drained: \(revisionCopies())")

        guard case .http(let instance)? = registry.published.functions["hello"] else { return XCTFail("not an http function") }
        let running = try await instance.status().get()
        XCTAssertEqual(running.workers.count, 1, "minWorkers: 1")
        let pid = try XCTUnwrap(running.workers.first?.pid)

        await registry.shutdown()
        XCTAssertNil(registry.published.functions["hello"])
        let stopped = await eventually { kill(pid_t(pid), 0) != 0 }
        XCTAssertTrue(stopped, "shutdown stops the serving revision's worker")
    }

    private func eventually(timeout: TimeInterval = 10, _ condition: @escaping () -> Bool) async -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if condition() { return true }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return condition()
    }
}
