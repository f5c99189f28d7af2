import Foundation
import Synchronization
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// The real `portico` binary, run as a child process on loopback ports picked for the test.
final class PorticoProcess {
    let process = Process()
    let directory: URL
    let configURL: URL
    let stdoutURL: URL
    let stderrURL: URL
    let httpPort: Int
    let tlsPort: Int
    let adminPort: Int
    /// `policies:` of the plain-HTTP listener (the config's `policies:` section must declare them).
    let listenerPolicies: [String]
    /// More keys for the TLS listener's `tls:` (such as `clientCA` and `mode`).
    let tlsOptions: [String: String]
    /// More keys for the plain-HTTP listener (such as `headersWithUnderscores`).
    let listenerOptions: [String: String]

    /// The development CA the gateway writes beside its certificate at first start.
    var certificateAuthority: String { directory.appendingPathComponent("certs/dev-ca.pem").path }

    /// `routesAndServices` is YAML for everything but listeners and admin, which the harness adds.
    /// `prepare` runs before the gateway starts, with the gateway's working directory (function
    /// folders go in its `Functions/`).
    init(config routesAndServices: String, extraArguments: [String] = [], listenerPolicies: [String] = [],
         tlsOptions: [String: String] = [:], listenerOptions: [String: String] = [:],
         prepare: (URL) throws -> Void = { _ in }, file: StaticString = #filePath, line: UInt = #line) throws {
        self.listenerPolicies = listenerPolicies
        self.listenerOptions = listenerOptions
        self.tlsOptions = tlsOptions
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("portico-e2e-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        configURL = directory.appendingPathComponent("gateway.yaml")
        stdoutURL = directory.appendingPathComponent("stdout.log")
        stderrURL = directory.appendingPathComponent("stderr.log")
        httpPort = try freePort()
        tlsPort = try freePort()
        adminPort = try freePort()
        try writeConfig(routesAndServices)
        try prepare(directory)

        _ = FileManager.default.createFile(atPath: stdoutURL.path, contents: nil)
        _ = FileManager.default.createFile(atPath: stderrURL.path, contents: nil)
        process.executableURL = Self.binary
        process.arguments = ["serve", "--config", configURL.path, "--threads", "2"] + extraArguments
        process.currentDirectoryURL = directory
        // NIO's strict mode turns misuse it would only print about into a crash a test sees.
        process.environment = ProcessInfo.processInfo.environment.merging(["SWIFTNIO_STRICT": "1"]) { _, new in new }
        process.standardOutput = try FileHandle(forWritingTo: stdoutURL)
        process.standardError = try FileHandle(forWritingTo: stderrURL)
        try process.run()
        try waitUntilReady(file: file, line: line)
    }

    /// Replaces the config file (listeners and admin stay as they were).
    func writeConfig(_ routesAndServices: String) throws {
        try fullConfig(routesAndServices).write(to: configURL, atomically: true, encoding: .utf8)
    }

    func fullConfig(_ routesAndServices: String) -> String {
        """
        listeners:
          - name: public
            address: 127.0.0.1:\(httpPort)
            policies: [\(listenerPolicies.joined(separator: ", "))]
        \(listenerOptions.sorted { $0.key < $1.key }.map { "    \($0.key): \($0.value)" }.joined(separator: "\n"))
          - name: public-tls
            address: 127.0.0.1:\(tlsPort)
            tls:
              certificate: certs/gateway.pem
              key: certs/gateway-key.pem
        \(tlsOptions.sorted { $0.key < $1.key }.map { "      \($0.key): \($0.value)" }.joined(separator: "\n"))
        admin:
          address: 127.0.0.1:\(adminPort)
        \(routesAndServices)
        """
    }

    var http: String { "http://127.0.0.1:\(httpPort)" }
    var https: String { "https://localhost:\(tlsPort)" }
    var admin: String { "http://127.0.0.1:\(adminPort)" }

    /// Generous, like `eventually`: it costs nothing once the gateway is ready, and a first start
    /// on a busy machine also writes the development certificates.
    private func waitUntilReady(file: StaticString, line: UInt) throws {
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline {
            if !process.isRunning {
                XCTFail("portico exited with \(process.terminationStatus): \(stderr)", file: file, line: line)
                throw HarnessError.notReady
            }
            if let response = try? RawHTTP.request(port: adminPort, "GET /ready HTTP/1.1\r\nHost: admin\r\n\r\n", timeout: 1),
               response.status == 200 {
                return
            }
            usleep(50_000)
        }
        XCTFail("portico did not become ready: \(stderr)", file: file, line: line)
        throw HarnessError.notReady
    }

    var stderr: String { (try? String(contentsOf: stderrURL, encoding: .utf8)) ?? "" }
    var stdout: String { (try? String(contentsOf: stdoutURL, encoding: .utf8)) ?? "" }

    func signal(_ signal: Int32) {
        kill(process.processIdentifier, signal)
    }

    /// Waits for the process to exit; returns its status, or nil on timeout.
    func waitForExit(timeout: TimeInterval) -> Int32? {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        return process.isRunning ? nil : process.terminationStatus
    }

    /// Peak resident memory of the gateway so far, in KiB (Linux `VmHWM`).
    var peakResidentKiB: Int? {
        guard let status = try? String(contentsOfFile: "/proc/\(process.processIdentifier)/status", encoding: .utf8) else { return nil }
        for line in status.split(separator: "\n") where line.hasPrefix("VmHWM:") {
            return Int(line.split(separator: " ", omittingEmptySubsequences: true)[1])
        }
        return nil
    }

    func stop() {
        if process.isRunning {
            signal(SIGKILL)
            process.waitUntilExit()
        }
        try? FileManager.default.removeItem(at: directory)
    }

    static var binary: URL {
        // The test bundle sits in the same products folder as the `portico` executable.
        for bundle in Bundle.allBundles where bundle.bundlePath.hasSuffix(".xctest") {
            let candidate = bundle.bundleURL.deletingLastPathComponent().appendingPathComponent("portico")
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
        }
        let packageRoot = URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        return packageRoot.appendingPathComponent(".build/debug/portico")
    }
}

enum HarnessError: Error {
    case notReady
    case socket(String)
}

/// Ports `freePort` handed out in this test process.
private let portsHandedOut = Mutex<Set<Int>>([])

/// A port nobody listens on right now (bound once, then released), and not one handed out
/// before: the kernel may give the same ephemeral port to two binds in a row, and a gateway
/// told to use one port for two listeners refuses its config.
func freePort() throws -> Int {
    for _ in 0..<100 {
        let port = try ephemeralPort()
        if portsHandedOut.withLock({ $0.insert(port).inserted }) { return port }
    }
    throw HarnessError.socket("no fresh port")
}

private func ephemeralPort() throws -> Int {
    let (fd, port) = try bindLoopback(listen: false)
    close(fd)
    return port
}

/// A TCP socket bound to a free port of 127.0.0.1 (and listening, if asked): its descriptor,
/// which the caller closes, and its port.
func bindLoopback(listen shouldListen: Bool) throws -> (fd: Int32, port: Int) {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw HarnessError.socket("socket") }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = 0
    let bound = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard bound == 0, !shouldListen || listen(fd, 1) == 0 else {
        close(fd)
        throw HarnessError.socket("bind")
    }
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
    }
    return (fd, Int(UInt16(bigEndian: address.sin_port)))
}

extension PorticoProcess {
    /// What `/functions` shows of `function`'s requests: those on its workers and those waiting
    /// in its queue (nil while it is not listed). A test waits on this for a request to have
    /// arrived, instead of sleeping and hoping it did.
    func functionLoad(_ function: String) -> (inFlight: Int, queued: Int)? {
        guard let entry = functionEntry(function) else { return nil }
        let workers = entry["workers"] as? [[String: Any]] ?? []
        return (workers.reduce(0) { $0 + ($1["inFlight"] as? Int ?? 0) }, entry["queueLength"] as? Int ?? 0)
    }

    /// How many of `function`'s workers are ready, as `/functions` shows them.
    func readyWorkers(_ function: String) -> Int {
        let workers = functionEntry(function)?["workers"] as? [[String: Any]] ?? []
        return workers.filter { $0["state"] as? String == "ready" }.count
    }

    func functionEntry(_ function: String) -> [String: Any]? {
        guard let body = try? Curl.run(["\(admin)/functions"]).body,
              let json = try? JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any] else { return nil }
        return (json["functions"] as? [[String: Any]])?.first { $0["name"] as? String == function }
    }
}
