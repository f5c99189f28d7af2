import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// Issue 17, section 5, as a user meets it: `portico deploy` that returns once the revision
/// serves, warm workers, a startup timeout per function, a byte bound on the cold-start queue,
/// and exec-mode processes in `/functions` and the metrics. Real gateway, workers and clients.
final class FunctionDeployEndToEndTests: XCTestCase {
    var gateway: PorticoProcess?
    /// On every worker's command line, so the test can find its processes (and nobody else's).
    let marker = "portico-test-\(UUID().uuidString.prefix(8))"

    override func tearDown() {
        gateway?.stop()
        XCTAssertTrue(eventually { Processes.matching(self.marker).isEmpty },
                      "workers left behind: \(Processes.matching(marker).map(\.commandLine))")
    }

    /// Answers GET with its greeting, revision and pid; POST with the size of the body it read.
    /// `startDelay` seconds pass before it listens (a model being loaded).
    static func worker(startDelay: Double = 0) -> String {
        """
        import os, sys, signal, time
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        time.sleep(\(startDelay))

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def answer(self, text):
                body = text.encode()
                self.send_response(200)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                if self.path.startswith("/slow/"):
                    time.sleep(int(self.path.split("/")[2]) / 1000)
                self.answer(f"{os.environ.get('GREETING', 'hi')} {os.environ['K_REVISION']} {os.getpid()}\\n")

            def do_POST(self):
                length = int(self.headers.get("content-length", "0"))
                self.answer(f"got {len(self.rfile.read(length))}\\n")

            def log_message(self, *args):
                pass

        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
        """
    }

    /// A function folder outside the functions folder, as a user's project is.
    func writeSource(_ name: String, in root: URL, manifest: String, script: String = worker()) throws -> URL {
        let folder = root.appendingPathComponent("src/\(name)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        try script.write(to: folder.appendingPathComponent("worker.py"), atomically: true, encoding: .utf8)
        try ("command: [\"python3\", \"worker.py\", \"\(marker)\"]\n" + manifest)
            .write(to: folder.appendingPathComponent("function.yaml"), atomically: true, encoding: .utf8)
        return folder
    }

    /// `Functions/NAME`, there when the gateway starts.
    func writeFunction(_ name: String, in root: URL, manifest: String, script: String = worker()) throws {
        let folder = root.appendingPathComponent("Functions/\(name)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        try script.write(to: folder.appendingPathComponent("worker.py"), atomically: true, encoding: .utf8)
        try ("command: [\"python3\", \"worker.py\", \"\(marker)\"]\n" + manifest)
            .write(to: folder.appendingPathComponent("function.yaml"), atomically: true, encoding: .utf8)
    }

    func deploy(_ folder: URL, config: URL, in directory: URL, _ extra: [String] = []) throws -> (status: Int32, output: String, seconds: Double) {
        let started = Date()
        let result = try runCommand(PorticoProcess.binary.path, ["deploy", folder.path, "--config", config.path, "--timeout", "60s"] + extra,
                                    currentDirectory: directory)
        return (result.status, result.output, Date().timeIntervalSince(started))
    }

    func functions(_ gateway: PorticoProcess) -> [[String: Any]] {
        guard let body = try? Curl.run(["\(gateway.admin)/functions"]).body,
              let object = try? JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any] else { return [] }
        return object["functions"] as? [[String: Any]] ?? []
    }

    func function(_ name: String, _ gateway: PorticoProcess) -> [String: Any]? {
        functions(gateway).first { $0["name"] as? String == name }
    }

    func workers(_ name: String, _ gateway: PorticoProcess) -> [[String: Any]] {
        function(name, gateway)?["workers"] as? [[String: Any]] ?? []
    }

    // MARK: Deploy waits

    func testDeployReturnsOnceTheNewRevisionServesAndARedeployOnceItsReplacementDoes() throws {
        let gateway = try PorticoProcess(config: "routes: []")
        self.gateway = gateway
        // The build takes a while, as a compiled worker's does: without the wait, a request made
        // right after `deploy` returned met no route (404) for as long.
        let source = try writeSource("hello", in: gateway.directory, manifest: "build: [\"sleep\", \"2\"]\nidleTimeout: 60s\n")
        let first = try deploy(source, config: gateway.configURL, in: gateway.directory)
        XCTAssertEqual(first.status, 0, first.output)
        XCTAssertEqual(Processes.workers(marker).count, 1, "a first worker was started for the deploy, before any request")
        let answer = try Curl.run(["\(gateway.http)/function/hello/"])
        XCTAssertEqual(answer.status, 200, "routable the moment deploy returned: \(answer.body)")
        XCTAssertTrue(first.output.contains("building revision hello-"), "a progress line: \(first.output)")
        let readyLine = try XCTUnwrap(first.output.split(separator: "\n").first { $0.hasPrefix("ready: revision hello-") },
                                      first.output)
        let revision = String(readyLine.split(separator: " ")[2])
        XCTAssertGreaterThanOrEqual(first.seconds, 2, "it waited for the build")

        XCTAssertTrue(answer.body.hasPrefix("hi \(revision) "), "the revision deploy named serves: \(answer.body)")

        // A redeploy returns once the new revision has taken over: the next request reaches it.
        try "command: [\"python3\", \"worker.py\", \"\(marker)\"]\nbuild: [\"sleep\", \"2\"]\nenv: { GREETING: hello }\n"
            .write(to: source.appendingPathComponent("function.yaml"), atomically: true, encoding: .utf8)
        let second = try deploy(source, config: gateway.configURL, in: gateway.directory)
        XCTAssertEqual(second.status, 0, second.output)
        XCTAssertTrue(second.output.contains("ready: revision hello-"), second.output)
        XCTAssertFalse(second.output.contains(revision), "a new revision: \(second.output)")
        let after = try Curl.run(["\(gateway.http)/function/hello/"])
        XCTAssertTrue(after.body.hasPrefix("hello hello-"), "the new revision answers at once: \(after.body)")
    }

    func testDeployExitsNonZeroWithTheBuildsErrorAndNoWaitReturnsAtOnce() throws {
        let gateway = try PorticoProcess(config: "routes: []")
        self.gateway = gateway
        let source = try writeSource("broken", in: gateway.directory, manifest: """
            build: ["sh", "-c", "echo 'main.c:3:1: error: expected ; before }' >&2; exit 3"]
            """ + "\n")
        let failed = try deploy(source, config: gateway.configURL, in: gateway.directory)
        XCTAssertEqual(failed.status, 1, failed.output)
        XCTAssertTrue(failed.output.contains("failed: build sh -c"), failed.output)
        XCTAssertTrue(failed.output.contains("main.c:3:1: error: expected ; before }"), "the build's own error: \(failed.output)")

        // --no-wait is the old behaviour: installed, exit 0, before the (slow) build has run.
        let slow = try writeSource("slow", in: gateway.directory, manifest: "build: [\"sleep\", \"3\"]\n")
        let quick = try deploy(slow, config: gateway.configURL, in: gateway.directory, ["--no-wait"])
        XCTAssertEqual(quick.status, 0, quick.output)
        XCTAssertTrue(quick.output.hasPrefix("deployed slow to "), quick.output)
        XCTAssertLessThan(quick.seconds, 2.5, "it did not wait for the build")
        XCTAssertEqual(try Curl.run(["\(gateway.http)/function/slow/"]).status, 404, "not routable yet: nothing waited")
        XCTAssertTrue(eventually { (try? Curl.run(["\(gateway.http)/function/slow/"]).status) == 200 })
    }

    func testDeployOfAWorkerThatCannotStartExitsNonZeroWithTheReason() throws {
        let gateway = try PorticoProcess(config: "routes: []")
        self.gateway = gateway
        let source = try writeSource("crashes", in: gateway.directory, manifest: "",
                                     script: "import sys\nprint('cannot load the model', file=sys.stderr)\nsys.exit(2)\n")
        let result = try deploy(source, config: gateway.configURL, in: gateway.directory)
        XCTAssertEqual(result.status, 1, result.output)
        XCTAssertTrue(result.output.contains("did not become ready: crash loop"), result.output)
        XCTAssertTrue(result.output.contains("exited before it was ready (exit 2)"), result.output)
        // The given-up warm-up stops restarting it: nothing runs until a request asks.
        XCTAssertTrue(eventually { Processes.matching(self.marker).isEmpty })
    }

    func testDeployingAnUnchangedFolderReturnsAtOnceAndFailedStartsOfARedeployAreReported() throws {
        let gateway = try PorticoProcess(config: "routes: []") { root in
            try self.writeFunction("same", in: root, manifest: "")
        }
        self.gateway = gateway
        // The same content as the revision that has waited cold since the gateway started.
        let source = try writeSource("same", in: gateway.directory, manifest: "")
        let unchanged = try deploy(source, config: gateway.configURL, in: gateway.directory)
        XCTAssertEqual(unchanged.status, 0, unchanged.output)
        XCTAssertTrue(unchanged.output.contains("ready: revision same-"), unchanged.output)
        XCTAssertLessThan(unchanged.seconds, 5, "nothing to wait for")
        XCTAssertTrue(Processes.workers(marker).isEmpty, "and nothing was started for it")

        // A redeploy whose worker cannot start: deploy says why, and the old revision serves on.
        try "import sys\nsys.exit(3)\n".write(to: source.appendingPathComponent("worker.py"), atomically: true, encoding: .utf8)
        let broken = try deploy(source, config: gateway.configURL, in: gateway.directory)
        XCTAssertEqual(broken.status, 1, broken.output)
        XCTAssertTrue(broken.output.contains("did not become ready: crash loop"), broken.output)
        XCTAssertTrue(broken.output.contains("keeps serving"), broken.output)
        XCTAssertEqual(try Curl.run(["\(gateway.http)/function/same/"]).status, 200)
    }

    func testDeployWithoutARunningGatewayInstallsAndSaysSo() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("portico-e2e-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: root) }
        let config = root.appendingPathComponent("gateway.yaml")
        let adminPort = try freePort()
        try "listeners:\n  - name: public\n    address: 127.0.0.1:\(try freePort())\nadmin:\n  address: 127.0.0.1:\(adminPort)\n"
            .write(to: config, atomically: true, encoding: .utf8)
        let source = try writeSource("lonely", in: root, manifest: "")
        let result = try deploy(source, config: config, in: root)
        XCTAssertEqual(result.status, 0, result.output)
        XCTAssertTrue(result.output.contains("no gateway is running at 127.0.0.1:\(adminPort)"), result.output)
        XCTAssertTrue(FileManager.default.fileExists(atPath: root.appendingPathComponent("Functions/lonely/function.yaml").path))
    }

    // MARK: minWorkers and startupTimeout

    func testMinWorkersRunWithoutTrafficAndIdleReapingStopsThere() throws {
        let gateway = try PorticoProcess(config: "routes: []") { root in
            try self.writeFunction("warm", in: root, manifest: "minWorkers: 2\nmaxWorkers: 4\nconcurrency: 1\nidleTimeout: 1s\n")
        }
        self.gateway = gateway
        XCTAssertTrue(eventually { self.workers("warm", gateway).filter { $0["state"] as? String == "ready" }.count == 2 },
                      "two warm workers with no request: \(functions(gateway))")
        XCTAssertEqual(Processes.workers(marker).count, 2)

        // A burst scales out past the minimum...
        let peak = PeakCounter()
        let gatewayPID = gateway.process.processIdentifier
        let marker = self.marker
        let sampler = Thread { peak.sample(marker: marker, childrenOf: gatewayPID, for: 30) }
        sampler.start()
        // One curl for the four, so that they are in flight at once.
        let burst = try Curl.run(["--parallel", "--parallel-immediate", "--parallel-max", "4", "--output", "/dev/null", "--write-out", "%{http_code}\n",
                                  "\(gateway.http)/function/warm/slow/1500/[1-4]"], timeout: 30)
        peak.stop()
        XCTAssertEqual(burst.body.split(separator: "\n").filter { !$0.contains(" ") }, ["200", "200", "200", "200"], burst.body)
        XCTAssertGreaterThan(peak.maximum, 2, "the burst started more workers:\n\(peak.atPeak)")
        // ...and idling reaps back to it, and no further, over several idle timeouts.
        XCTAssertTrue(eventually { Processes.workers(self.marker).count == 2 }, "reaped down to minWorkers")
        let watchUntil = Date().addingTimeInterval(3.5)
        while Date() < watchUntil {
            XCTAssertGreaterThanOrEqual(Processes.workers(marker).count, 2, "never below minWorkers")
            usleep(100_000)
        }
        XCTAssertEqual(workers("warm", gateway).count, 2)

        // A worker that dies below the minimum is replaced without a request.
        let victim = try XCTUnwrap(Processes.workers(marker).first)
        kill(victim.pid, SIGKILL)
        XCTAssertTrue(eventually {
            let pids = Processes.workers(self.marker).map(\.pid)
            return pids.count == 2 && !pids.contains(victim.pid)
        }, "replaced: \(Processes.workers(marker).map(\.pid))")
    }

    func testAStartupTimeoutPerFunctionLetsASlowStarterStartAndStopsOneOverIts() throws {
        // 11 s to start: more than the default startup timeout (10 s).
        let gateway = try PorticoProcess(config: "routes: []") { root in
            try self.writeFunction("model", in: root, manifest: "startupTimeout: 30s\n", script: Self.worker(startDelay: 11))
            try self.writeFunction("tooslow", in: root, manifest: "startupTimeout: 3s\n", script: Self.worker(startDelay: 11))
        }
        self.gateway = gateway
        let statuses = Statuses()
        statuses.start(curl: ["--max-time", "40", "\(gateway.http)/function/model/"])
        statuses.start(curl: ["--max-time", "40", "\(gateway.http)/function/tooslow/"])
        statuses.wait()
        let timed = statuses.timed
        let tooSlow = try XCTUnwrap(timed.first { $0.status == 504 }, "\(timed)")
        XCTAssertLessThan(tooSlow.seconds, 10, "its own 3 s timeout ended the wait, not the default: \(timed)\n\(gateway.stderr)")
        XCTAssertTrue(timed.contains { $0.status == 200 && $0.seconds >= 10 }, "the slow starter served after 11 s: \(timed)")
        let reason = function("tooslow", gateway)?["lastError"] as? String ?? ""
        XCTAssertTrue(reason.contains("not ready within 3s"), "a clear reason in /functions: \(reason)")
    }

    /// A kept worker that dies soon after it came up is replaced with backoff, not in a tight
    /// loop: over 3 s, a handful of starts rather than one every ~100 ms.
    func testAKeptWorkerThatKeepsCrashingIsReplacedWithBackoff() throws {
        let crashesSoon = """
            import os, socket, sys, time
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", int(os.environ["PORT"])))
            s.listen(5)
            time.sleep(0.05)
            sys.exit(1)
            """
        let gateway = try PorticoProcess(config: "routes: []") { root in
            try self.writeFunction("flaky", in: root, manifest: "minWorkers: 1\n", script: crashesSoon)
        }
        self.gateway = gateway
        func starts() -> Int {
            gateway.stderr.split(separator: "\n").filter { $0.contains("starting worker") && $0.contains("function=flaky") }.count
        }
        XCTAssertTrue(eventually { starts() >= 1 })
        let window = Date().addingTimeInterval(3)
        while Date() < window { usleep(100_000) }
        // Without backoff a start every ~0.1 s (Python's start plus 50 ms): about 30. With it:
        // 0, 0, 0.1, 0.2, 0.4, 0.8, 1.6 s apart, so at most 7 in the window.
        let count = starts()
        XCTAssertGreaterThanOrEqual(count, 3, "it is replaced")
        XCTAssertLessThanOrEqual(count, 8, "with backoff, not in a loop: \(count) starts in 3 s")
    }

    // MARK: queueBodyLimit

    /// Sends COUNT uploads of SIZE bytes at once, each head and body in one write, and prints
    /// a line per answer: the status, whether it had Retry-After, and the body.
    static let uploader = #"""
    import socket, sys, threading
    port, path, size, count = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    results = [None] * count
    def upload(i):
        s = socket.create_connection(("127.0.0.1", port))
        s.settimeout(30)
        head = f"POST {path} HTTP/1.1\r\nHost: t\r\nContent-Length: {size}\r\nConnection: close\r\n\r\n".encode()
        s.sendall(head + b"x" * size)
        data = b""
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        except OSError:
            pass
        status = data.split(b" ", 2)[1].decode() if data.startswith(b"HTTP/") else "none"
        retry = b"\r\nretry-after:" in data.lower()
        body = data.split(b"\r\n\r\n", 1)[1].decode().strip() if b"\r\n\r\n" in data else ""
        results[i] = f"{status} retry-after={retry} {body}"
    threads = [threading.Thread(target=upload, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print("\n".join(results))
    """#

    func testUploadsWaitingForAColdWorkerAreBoundedInBytes() throws {
        // 2 s to start, so the uploads wait; 4 KiB of bodies may wait.
        let gateway = try PorticoProcess(config: "routes: []") { root in
            try self.writeFunction("upload", in: root, manifest: "queueBodyLimit: 4KiB\nidleTimeout: 1s\nconcurrency: 8\n",
                                   script: Self.worker(startDelay: 2))
        }
        self.gateway = gateway
        func upload(_ size: Int, count: Int) throws -> [String] {
            let result = try PythonPeer.run(script: Self.uploader,
                                            arguments: [String(gateway.httpPort), "/function/upload/", String(size), String(count)])
            XCTAssertEqual(result.status, 0, result.output)
            return result.output.split(separator: "\n").map(String.init)
        }

        // Under the bound: a cold upload waits for its worker and arrives whole.
        XCTAssertEqual(try upload(3000, count: 1), ["200 retry-after=False got 3000"])
        XCTAssertTrue(eventually { Processes.workers(self.marker).isEmpty }, "cold again")

        // Over it: four 3000-byte uploads at once to the cold function. The first one's body
        // fits in 4 KiB; the others would take it over and get 503 with Retry-After at once.
        let answers = try upload(3000, count: 4)
        XCTAssertEqual(answers.filter { $0 == "200 retry-after=False got 3000" }.count, 1, "\(answers)")
        XCTAssertEqual(answers.filter { $0.hasPrefix("503 retry-after=True") }.count, 3, "\(answers)")
        XCTAssertEqual(function("upload", gateway)?["queueBodyBytes"] as? Int, 0, "every held byte was given back")
        // Counted as the gateway's own answers, and why (issue 18's `queue_full`).
        let metrics = try Curl.run(["\(gateway.admin)/metrics"]).body
        XCTAssertTrue(metrics.split(separator: "\n").contains {
            $0.hasPrefix("portico_local_replies_total{") && $0.contains("status=\"503\",reason=\"queue_full\"}") && $0.hasSuffix(" 3")
        }, metrics)
    }

    // MARK: Exec mode

    func testExecProcessesShowInFunctionsAndMetricsWhileTheyRun() throws {
        let gateway = try PorticoProcess(config: "routes: []") { root in
            let folder = root.appendingPathComponent("Functions/job")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            try "command: [\"sh\", \"-c\", \"sleep 3; echo done\", \"\(self.marker)\"]\nmode: exec\n"
                .write(to: folder.appendingPathComponent("function.yaml"), atomically: true, encoding: .utf8)
        }
        self.gateway = gateway
        let running = "portico_function_workers{function=\"job\",state=\"running\"}"
        let statuses = Statuses()
        statuses.start(curl: ["\(gateway.http)/function/job/"])
        XCTAssertTrue(eventually { self.workers("job", gateway).count == 1 }, "\(functions(gateway))")
        let worker = try XCTUnwrap(workers("job", gateway).first)
        XCTAssertEqual(worker["state"] as? String, "running")
        let pid = try XCTUnwrap(worker["pid"] as? Int)
        XCTAssertTrue(Processes.matching(marker).contains { $0.pid == Int32(pid) }, "the pid shown is the running process")
        XCTAssertEqual(function("job", gateway)?["state"] as? String, "active")
        XCTAssertTrue(try Curl.run(["\(gateway.admin)/metrics"]).body.contains("\(running) 1"))

        statuses.wait()
        XCTAssertEqual(statuses.all, [200])
        XCTAssertTrue(eventually { self.workers("job", gateway).isEmpty })
        XCTAssertEqual(function("job", gateway)?["state"] as? String, "idle")
        XCTAssertTrue(try Curl.run(["\(gateway.admin)/metrics"]).body.contains("\(running) 0"))
    }

    /// An exec request that waits for a process slot holds its whole body: `queueBodyLimit`
    /// bounds those bodies together.
    func testExecRequestsWaitingForASlotAreBoundedInBytes() throws {
        let gateway = try PorticoProcess(config: "routes: []") { root in
            let folder = root.appendingPathComponent("Functions/count")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            try """
                command: ["sh", "-c", "sleep 2; wc -c", "\(self.marker)"]
                mode: exec
                maxWorkers: 1
                queueBodyLimit: 1KiB
                """.write(to: folder.appendingPathComponent("function.yaml"), atomically: true, encoding: .utf8)
        }
        self.gateway = gateway
        let url = "\(gateway.http)/function/count/"
        let statuses = Statuses()
        statuses.start(curl: ["--data-binary", "first", url])
        XCTAssertTrue(eventually { self.workers("count", gateway).count == 1 }, "the one slot is taken")
        // 600 bytes wait for the slot; 600 more would take the waiting bodies over 1 KiB.
        statuses.start(curl: ["--data-binary", String(repeating: "a", count: 600), url])
        XCTAssertTrue(eventually { (self.function("count", gateway)?["queueBodyBytes"] as? Int) == 600 },
                      "\(functions(gateway))")
        let refused = try Curl.run(["--data-binary", String(repeating: "b", count: 600), url])
        XCTAssertEqual(refused.status, 503)
        XCTAssertEqual(refused.header("retry-after"), "1")
        statuses.wait()
        XCTAssertEqual(statuses.all.sorted(), [200, 200], "the first and the one that waited were served")
        XCTAssertEqual(function("count", gateway)?["queueBodyBytes"] as? Int, 0)
    }
}
