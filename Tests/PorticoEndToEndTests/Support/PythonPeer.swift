import Foundation
import XCTest

/// A Python program run beside the gateway for a test (a gRPC server, a raw HTTP/2 server):
/// started with its arguments, ready once it prints `ready` on a line of its own, and
/// terminated by `stop()` (or when the test process goes, as its parent).
final class PythonPeer {
    let process = Process()
    let outputURL: URL

    init(script: String, arguments: [String], marker: String, file: StaticString = #filePath, line: UInt = #line) throws {
        outputURL = FileManager.default.temporaryDirectory.appendingPathComponent("python-peer-\(UUID().uuidString).log")
        _ = FileManager.default.createFile(atPath: outputURL.path, contents: nil)
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        // The marker rides on the command line, so the test's leak check can find the process.
        process.arguments = ["python3", "-c", script, marker] + arguments
        let handle = try FileHandle(forWritingTo: outputURL)
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        guard eventually(timeout: 30, { self.output.split(separator: "\n").contains("ready") || !self.process.isRunning }),
              process.isRunning else {
            XCTFail("the Python peer did not start: \(output)", file: file, line: line)
            throw HarnessError.notReady
        }
    }

    var output: String { (try? String(contentsOf: outputURL, encoding: .utf8)) ?? "" }

    func stop() {
        guard process.isRunning else { return }
        process.terminate()
        process.waitUntilExit()
    }

    deinit {
        stop()
        try? FileManager.default.removeItem(at: outputURL)
    }

    /// Runs a Python client to its end (bounded by `timeout`): its exit status and output.
    static func run(script: String, arguments: [String], environment: [String: String] = [:],
                    timeout: TimeInterval = 60) throws -> (status: Int32, output: String) {
        let settings = environment.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
        return try runCommand("/usr/bin/timeout", [String(Int(timeout)), "env"] + settings + ["python3", "-c", script] + arguments)
    }
}
