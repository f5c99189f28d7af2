import Foundation
import XCTest

/// A test with one `TestUpstream` named `backend` and a gateway the test starts; afterwards the
/// gateway is stopped and no worker process marked with `marker` may be left.
class GatewayTestCase: XCTestCase {
    var upstream: TestUpstream!
    var gateway: PorticoProcess!
    /// On every test worker's command line, so the test can find its processes (and nobody else's).
    let marker = "portico-test-\(UUID().uuidString.prefix(8))"

    override func setUpWithError() throws {
        upstream = try TestUpstream(name: "backend")
    }

    override func tearDown() {
        gateway?.stop()
        upstream?.stop()
        XCTAssertTrue(eventually { Processes.matching(self.marker).isEmpty }, "no worker outlives the gateway")
    }

    /// Writes `Functions/NAME` under `root`: `script` as its Python worker, and `manifest` as
    /// the rest of its `function.yaml` (by default reached only through the gateway's routes).
    func writeFunction(_ name: String, script: String, in root: URL, manifest: String = "routes: []\n") throws {
        let folder = root.appendingPathComponent("Functions/\(name)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        try script.write(to: folder.appendingPathComponent("worker.py"), atomically: true, encoding: .utf8)
        try ("command: [\"python3\", \"worker.py\", \"\(marker)\"]\n" + manifest)
            .write(to: folder.appendingPathComponent("function.yaml"), atomically: true, encoding: .utf8)
    }
}
