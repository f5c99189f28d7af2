import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// A real server a test runs as a child process (redis-server, openssl s_server, a Python
/// script) on a loopback port: started, waited for until the port accepts, killed at the end.
final class ChildServer {
    let process = Process()
    let port: Int
    let logURL: URL

    init(_ executable: String, _ arguments: [String], port: Int, file: StaticString = #filePath, line: UInt = #line) throws {
        self.port = port
        logURL = FileManager.default.temporaryDirectory.appendingPathComponent("portico-child-\(UUID().uuidString).log")
        _ = FileManager.default.createFile(atPath: logURL.path, contents: nil)
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = try FileHandle(forWritingTo: logURL)
        process.standardError = process.standardOutput
        try process.run()
        guard eventually(timeout: 20, { !self.process.isRunning || (try? RawSocket(port: port, timeout: 1)) != nil }),
              process.isRunning else {
            XCTFail("\(executable) did not listen on \(port): \(log)", file: file, line: line)
            stop()
            throw HarnessError.notReady
        }
    }

    var log: String { (try? String(contentsOf: logURL, encoding: .utf8)) ?? "" }

    func stop() {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        try? FileManager.default.removeItem(at: logURL)
    }
}

/// Runs a command with `input` on its standard input, killed after `timeout` seconds; returns
/// its exit status and what it printed (standard output and error together).
@discardableResult
func runBounded(_ path: String, _ arguments: [String], input: Data? = nil, timeout: TimeInterval = 30) throws
    -> (status: Int32, output: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: path)
    process.arguments = arguments
    let output = Pipe()
    process.standardOutput = output
    process.standardError = output
    let inputPipe = Pipe()
    process.standardInput = input == nil ? FileHandle.nullDevice : inputPipe
    try process.run()
    if let input {
        DispatchQueue.global().async {
            inputPipe.fileHandleForWriting.write(input)
            try? inputPipe.fileHandleForWriting.close()
        }
    }
    let killer = DispatchWorkItem { if process.isRunning { process.terminate() } }
    DispatchQueue.global().asyncAfter(deadline: .now() + timeout, execute: killer)
    let data = output.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    killer.cancel()
    return (process.terminationStatus, String(decoding: data, as: UTF8.self))
}

extension PorticoProcess {
    /// The value of one Prometheus series from `/metrics` (0 when it is not there yet).
    func metric(_ series: String) -> Double {
        let text = (try? Curl.run(["\(admin)/metrics"]).body) ?? ""
        for line in text.split(separator: "\n") where line.hasPrefix(series + " ") {
            return Double(line.dropFirst(series.count + 1)) ?? 0
        }
        return 0
    }

    /// The access-log lines (JSON, one per connection or request) printed so far.
    var accessLogLines: [[String: Any]] {
        stdout.split(separator: "\n").compactMap { line in
            guard line.hasPrefix("{") else { return nil }
            return try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
        }
    }
}
