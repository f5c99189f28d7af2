import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import PorticoConfig
import PorticoProxy
import XCTest

/// The proxy's backend interface is all a backend needs. A backend that is neither a service
/// nor a function, and a local responder that is not an exec function, are handed to a real
/// gateway through its function source (this test target does not link PorticoFunctions), and
/// serve real requests from curl, proxied to a real server on 127.0.0.1.
final class BackendInterfaceTests: XCTestCase {
    private var server: LoopbackHTTPServer!
    private var running: RunningGateway!
    private var port = 0
    private var folder: URL!

    override func tearDown() {
        running?.stop()
        server?.stop()
        if let folder { try? FileManager.default.removeItem(at: folder) }
        super.tearDown()
    }

    /// Starts a gateway whose routes go to the test's own backends and responders.
    private func startGateway(_ functions: [String: any DeployedFunction]) throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("portico-backend-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let configPath = folder.appendingPathComponent("gateway.yaml").path
        try """
        listeners:
          - name: public
            address: 127.0.0.1:0
        accessLog: { format: off }
        routes:
        \(functions.keys.sorted().map { "  - match: { prefix: /\($0) }\n    function: \($0)" }.joined(separator: "\n"))
        """.write(toFile: configPath, atomically: true, encoding: .utf8)
        let logger = Logger(label: "backend-test", factory: { _ in SwiftLogNoOpLogHandler() })
        let gateway = try Gateway(configPath: configPath, eventLoopThreads: 2, logger: logger) { hooks in
            TestFunctionSource(hooks: hooks, functions: functions)
        }
        running = RunningGateway(gateway, logger: logger)
        try running.waitUntilReady()
        port = try XCTUnwrap(gateway.boundAddress(listener: "public")?.port)
    }

    /// A lease that waits, an endpoint that refuses and is replaced, then a real answer: the
    /// backend hears the outcome and gets its endpoint back, once each.
    func testABackendOfItsOwnServesThroughTheGateway() throws {
        server = try LoopbackHTTPServer { head in "\(head.method.rawValue) \(head.uri)\n" }
        let refusing = try LoopbackHTTPServer.refusedPort()
        let backend = ScriptedBackend(endpoints: [
            HostPort(host: "127.0.0.1", port: refusing), HostPort(host: "127.0.0.1", port: server.port),
        ])
        try startGateway(["own": TestFunction(name: "own", serving: .backend(backend))])

        let answer = try curl(["http://127.0.0.1:\(port)/own/hello"])
        XCTAssertEqual(answer.status, 200, answer.body)
        XCTAssertEqual(answer.body, "GET /own/hello\n")
        XCTAssertEqual(backend.released.wait(timeout: .now() + 5), .success, "\(backend.events)")
        XCTAssertEqual(backend.events, ["lease", "refused 0", "lease", "record 1 200", "release 1"])
    }

    /// Each reason a backend gives for leasing nothing is the status the client gets.
    func testABackendThatLeasesNothingAnswersWithItsReason() throws {
        try startGateway([
            "full": TestFunction(name: "full", serving: .backend(UnavailableBackend(reason: .queueFull))),
            "slow": TestFunction(name: "slow", serving: .backend(UnavailableBackend(reason: .startupTimeout))),
            "broken": TestFunction(name: "broken", serving: .backend(UnavailableBackend(reason: .crashLooping))),
        ])
        let full = try curl(["-i", "http://127.0.0.1:\(port)/full"])
        XCTAssertEqual(full.status, 503)
        XCTAssertTrue(full.body.lowercased().contains("retry-after: 1\r\n"), full.body)
        XCTAssertEqual(try curl(["http://127.0.0.1:\(port)/slow"]).status, 504)
        XCTAssertEqual(try curl(["http://127.0.0.1:\(port)/broken"]).status, 502)
    }

    /// A local responder gets the request as plain values, its body whole, and its answer (or
    /// its failure's status) is what the client gets.
    func testALocalResponderAnswersInsideTheGateway() throws {
        try startGateway(["echo": TestFunction(name: "echo", serving: .responder(EchoResponder()))])
        let echoed = try curl(["-H", "X-Note: hi", "--data-binary", "body bytes", "http://127.0.0.1:\(port)/echo/a?q=1"])
        XCTAssertEqual(echoed.status, 200)
        XCTAssertEqual(echoed.body, "POST /echo/a q=1 hi 127.0.0.1 body bytes")
        XCTAssertEqual(try curl(["http://127.0.0.1:\(port)/echo/timeout"]).status, 504)
        XCTAssertEqual(try curl(["http://127.0.0.1:\(port)/echo/busy"]).status, 503)
    }

    private func curl(_ arguments: [String]) throws -> (status: Int, body: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
        process.arguments = ["-s", "--max-time", "10", "-w", "\n%{http_code}"] + arguments
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        var text = String(decoding: data, as: UTF8.self)
        let newline = try XCTUnwrap(text.lastIndex(of: "\n"))
        let status = Int(text[text.index(after: newline)...]) ?? 0
        text.removeSubrange(newline...)
        return (status, text)
    }
}

/// The gateway's function source, handing over the test's functions as it starts.
private final class TestFunctionSource: FunctionSource {
    let hooks: FunctionSourceHooks
    let functions: [String: any DeployedFunction]

    init(hooks: FunctionSourceHooks, functions: [String: any DeployedFunction]) {
        self.hooks = hooks
        self.functions = functions
    }

    func deployNow() async { hooks.publish(functions, [:]) }
    func startWatching() {}
    func shutdown() async {}
}

private struct TestFunction: DeployedFunction {
    let manifest: FunctionManifest
    let revision = "test"
    let serving: FunctionServing

    init(name: String, serving: FunctionServing) {
        // No routes of its own: the gateway config routes to it.
        self.manifest = FunctionManifest(name: name, directory: "/nonexistent", command: ["false"], routes: [])
        self.serving = serving
    }

    func status() -> EventLoopFuture<FunctionStatus> {
        MultiThreadedEventLoopGroup.singleton.next().makeSucceededFuture(FunctionStatus(
            name: manifest.name, revision: revision, mode: "test", state: "active", queueLength: 0, lastError: nil, workers: []))
    }
}

/// Hands out its endpoints in turn, each after a short wait on the request's loop, and notes
/// every call the proxy makes.
private final class ScriptedBackend: Backend, @unchecked Sendable {
    private let endpoints: [HostPort]
    private let lock = NSLock()
    private var next = 0
    private var log: [String] = []
    /// Signalled at each release: the last thing the proxy tells a backend about a request.
    let released = DispatchSemaphore(value: 0)

    init(endpoints: [HostPort]) { self.endpoints = endpoints }

    var events: [String] { locked { log } }
    private func note(_ event: String) { locked { log.append(event) } }

    private func locked<T>(_ body: () -> T) -> T {
        lock.lock()
        defer { lock.unlock() }
        return body()
    }

    var leaseMayWait: Bool { true }

    func lease(id: UInt64, on loop: EventLoop, avoiding previous: BackendLease?, for waiter: any BackendLeaseWaiter) {
        note("lease")
        let slot = locked { () -> Int in
            defer { next += 1 }
            return next % endpoints.count
        }
        let lease = BackendLease(endpoint: endpoints[slot], slot: slot, tryTimeout: .seconds(5))
        loop.assumeIsolated().scheduleTask(in: .milliseconds(20)) { waiter.backendLeased(.success(lease)) }
    }

    func cancelLease(id: UInt64) { note("cancel") }
    func record(_ lease: BackendLease, status: Int?) { note("record \(lease.slot) \(status.map(String.init) ?? "none")") }
    func release(_ lease: BackendLease) {
        note("release \(lease.slot)")
        released.signal()
    }

    func replaceRefusedEndpoint(_ lease: BackendLease) -> Bool {
        note("refused \(lease.slot)")
        return true
    }

    func backendForNextTry(after previous: BackendLease?) -> (any Backend)? { self }
}

/// Leases nothing, for one reason.
private final class UnavailableBackend: Backend, Sendable {
    let reason: BackendUnavailable
    init(reason: BackendUnavailable) { self.reason = reason }

    var leaseMayWait: Bool { true }
    func lease(id: UInt64, on loop: EventLoop, avoiding previous: BackendLease?, for waiter: any BackendLeaseWaiter) {
        waiter.backendLeased(.failure(reason))
    }
    func cancelLease(id: UInt64) {}
    func record(_ lease: BackendLease, status: Int?) {}
    func release(_ lease: BackendLease) {}
    func replaceRefusedEndpoint(_ lease: BackendLease) -> Bool { false }
    func backendForNextTry(after previous: BackendLease?) -> (any Backend)? { self }
}

/// Answers with what it was given; `/echo/timeout` and `/echo/busy` fail.
private struct EchoResponder: LocalResponder {
    func respond(to request: ExecRequest, on loop: EventLoop) -> EventLoopFuture<ExecOutcome> {
        switch request.path {
        case "/echo/timeout": return loop.makeSucceededFuture(.timedOut)
        case "/echo/busy": return loop.makeSucceededFuture(.queueFull)
        default:
            let note = request.headers.first { $0.0.lowercased() == "x-note" }?.1 ?? "-"
            var body = ByteBuffer(string: "\(request.method) \(request.path) \(request.query) \(note) \(request.remoteAddress) ")
            var received = request.body
            body.writeBuffer(&received)
            return loop.makeSucceededFuture(.ok(body))
        }
    }
}
