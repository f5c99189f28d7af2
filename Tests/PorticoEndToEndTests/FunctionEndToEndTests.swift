import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// Functions as a user meets them: folders under `Functions/`, real worker processes, curl.
final class FunctionEndToEndTests: XCTestCase {
    var gateway: PorticoProcess!
    /// On every worker's command line, so the test can find its processes (and nobody else's).
    let marker = "portico-test-\(UUID().uuidString.prefix(8))"

    override func tearDown() {
        if let gateway {
            let pid = gateway.process.processIdentifier
            gateway.stop()
            // Whatever happened in the test, no worker may outlive the gateway.
            XCTAssertTrue(eventually { Processes.matching(self.marker).isEmpty },
                          "workers left behind: \(Processes.matching(marker).map(\.commandLine))")
            _ = pid
        }
    }

    /// A Python worker: `/slow/MS/...` sleeps first; answers with its revision and pid.
    static let workerScript = PythonWorker.script(
        before: """
            parts = self.path.split("/")
            if len(parts) > 2 and parts[1] == "slow":
                time.sleep(int(parts[2]) / 1000)
            """,
        body: #"f"{os.environ.get('GREETING', 'hi')} {os.environ['K_REVISION']} {os.getpid()} {self.path}\n""#,
        headers: [("x-worker-pid", "str(os.getpid())")])

    /// Writes `Functions/NAME` with the test worker and a manifest made of `manifest` lines.
    func writeFunction(_ name: String, in root: URL, manifest: String, script: String = FunctionEndToEndTests.workerScript) throws {
        let folder = root.appendingPathComponent("Functions/\(name)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        try script.write(to: folder.appendingPathComponent("worker.py"), atomically: true, encoding: .utf8)
        try ("command: [\"python3\", \"worker.py\", \"\(marker)\"]\n" + manifest)
            .write(to: folder.appendingPathComponent("function.yaml"), atomically: true, encoding: .utf8)
    }

    let noRoutes = "routes: []"

    func testColdStartThenScaleToZeroWithoutZombies() throws {
        // 3 s: the worker must still be up when the test looks, right after the request; a slow
        // machine can take a second between the two.
        gateway = try PorticoProcess(config: noRoutes) { root in
            try self.writeFunction("hello", in: root, manifest: "idleTimeout: 3s\n")
        }
        XCTAssertTrue(Processes.matching(marker).isEmpty, "nothing runs before the first request")

        let first = try Curl.run(["\(gateway.http)/function/hello/greet"])
        XCTAssertEqual(first.status, 200, gateway.stderr)
        XCTAssertTrue(first.body.hasPrefix("hi hello-"), first.body)
        XCTAssertTrue(first.body.hasSuffix(" /greet\n"), "the default route rewrites /function/hello/ to /: \(first.body)")
        XCTAssertEqual(Processes.workers(marker).count, 1)

        XCTAssertTrue(eventually { Processes.matching(self.marker).isEmpty }, "the idle worker stops")
        XCTAssertTrue(Processes.zombies(childrenOf: gateway.process.processIdentifier).isEmpty, "and is reaped")

        let metrics = try Curl.run(["\(gateway.admin)/metrics"]).body
        XCTAssertTrue(metrics.contains("portico_function_cold_starts_total{function=\"hello\"} 1"), metrics)
        XCTAssertTrue(metrics.contains("portico_function_cold_start_seconds_bucket{function=\"hello\""), metrics)
        XCTAssertTrue(metrics.contains("portico_function_workers{function=\"hello\",state=\"ready\"} 0"), metrics)
        XCTAssertTrue(gateway.stderr.contains("worker ready"), "a log line for the start, with its time to ready")
        let ready = gateway.stderr.split(separator: "\n").first { $0.contains("worker ready") && $0.contains("function=hello") }
        XCTAssertTrue(ready?.contains("probe=supervisor") == true,
                      "its supervisor found the port accepting, not the gateway's 100 ms fallback: \(ready ?? "")")
        // What runs the supervisors: the spawner, a child of the gateway like the supervisors.
        XCTAssertTrue(Processes.all().contains { $0.parent == gateway.process.processIdentifier
                          && $0.commandLine.hasPrefix("portico-spawner") && $0.state != "Z" })
        XCTAssertTrue(gateway.stderr.contains("worker stopped"), "and one for the stop")

        let again = try Curl.run(["\(gateway.http)/function/hello/again"])
        XCTAssertEqual(again.status, 200, "a scaled-to-zero function starts again")
    }

    func testBurstOf32SlowRequestsNeverExceedsMaxWorkers() throws {
        gateway = try PorticoProcess(config: noRoutes) { root in
            try self.writeFunction("burst", in: root, manifest: "concurrency: 1\nmaxWorkers: 4\n")
        }
        let peak = PeakCounter()
        let gatewayPID = gateway.process.processIdentifier
        let marker = self.marker
        let sampler = Thread { peak.sample(marker: marker, childrenOf: gatewayPID, for: 60) }
        sampler.start()
        let result = try Curl.run(["--parallel", "--parallel-max", "32", "--output", "/dev/null",
                                   "--write-out", "%{http_code}\n", "\(gateway.http)/function/burst/slow/300/[1-32]"],
                                  timeout: 60)
        peak.stop()
        let codes = result.body.split(separator: "\n").filter { !$0.contains(" ") }
        XCTAssertEqual(codes.count, 32, result.body)
        XCTAssertTrue(codes.allSatisfy { $0 == "200" }, "every request succeeded: \(codes)")
        XCTAssertLessThanOrEqual(peak.maximum, 4, "never more than maxWorkers processes:\n\(peak.atPeak)")
        XCTAssertGreaterThanOrEqual(peak.maximum, 2, "the burst did scale out")
    }

    func testKilledWorkerIsReplaced() throws {
        gateway = try PorticoProcess(config: noRoutes) { root in
            try self.writeFunction("fragile", in: root, manifest: "concurrency: 4\nmaxWorkers: 1\n")
        }
        let first = try Curl.run(["\(gateway.http)/function/fragile/a"])
        let pid = try XCTUnwrap(first.header("x-worker-pid").flatMap { Int32($0) })
        kill(pid, SIGKILL)
        var replacement: Int32?
        XCTAssertTrue(eventually {
            guard let next = try? Curl.run(["\(self.gateway.http)/function/fragile/b"]), next.status == 200 else { return false }
            replacement = next.header("x-worker-pid").flatMap { Int32($0) }
            return true
        })
        XCTAssertNotNil(replacement)
        XCTAssertNotEqual(replacement, pid, "a new worker serves")
        XCTAssertTrue(Processes.zombies(childrenOf: gateway.process.processIdentifier).isEmpty)
    }

    func testStartupTimeoutIs504AndKillsTheWorker() throws {
        let neverListens = "import time\ntime.sleep(60)\n"
        gateway = try PorticoProcess(config: noRoutes) { root in
            try self.writeFunction("stuck", in: root, manifest: "startupTimeout: 500ms\n", script: neverListens)
            try self.writeFunction("fine", in: root, manifest: "")
        }
        let started = Date()
        let result = try Curl.run(["\(gateway.http)/function/stuck/"])
        XCTAssertEqual(result.status, 504)
        // Without the startup timeout, the route's 15 s would end the wait.
        XCTAssertLessThan(Date().timeIntervalSince(started), 10)
        XCTAssertTrue(eventually { Processes.matching(self.marker).isEmpty }, "the stuck worker was killed")
        XCTAssertEqual(try Curl.run(["\(gateway.http)/function/fine/"]).status, 200, "another function is unaffected")
    }

    func testGatewaySIGKILLLeavesNoWorker() throws {
        gateway = try PorticoProcess(config: noRoutes) { root in
            try self.writeFunction("one", in: root, manifest: "")
            try self.writeFunction("two", in: root, manifest: "")
        }
        XCTAssertEqual(try Curl.run(["\(gateway.http)/function/one/"]).status, 200)
        XCTAssertEqual(try Curl.run(["\(gateway.http)/function/two/"]).status, 200)
        XCTAssertEqual(Processes.workers(marker).count, 2)
        gateway.signal(SIGKILL)
        XCTAssertTrue(eventually { Processes.matching(self.marker).isEmpty },
                      "PR_SET_PDEATHSIG takes the workers down with the gateway")
    }

    /// The shutdown order as a user sees it (Portico.swift states it where the service group is
    /// built): SIGTERM drains the listeners first, so a request in flight to a function still
    /// gets its worker's answer; only then do the workers get SIGTERM; and the access-log
    /// writer stops last, so that request's line is on stdout.
    func testSIGTERMDrainsAFunctionRequestBeforeItsWorkerStopsAndLogsIt() throws {
        gateway = try PorticoProcess(config: noRoutes) { root in
            try self.writeFunction("last", in: root, manifest: "")
        }
        let inFlight = try RawSocket(port: gateway.httpPort, timeout: 10)
        inFlight.send("GET /function/last/slow/1500/in-flight HTTP/1.1\r\nHost: x\r\n\r\n")
        XCTAssertTrue(eventually(timeout: 10) {
            (try? Curl.run(["\(self.gateway.admin)/functions"]).body.contains("\"inFlight\" : 1")) == true
        }, "the request reached a worker")

        gateway.signal(SIGTERM)
        let answer = RawHTTP.parseResponses(inFlight.receive { RawHTTP.completeResponses(in: $0) >= 1 })
        XCTAssertEqual(answer.first?.status, 200, "the worker answered during the drain: \(gateway.stderr)")
        XCTAssertEqual(gateway.waitForExit(timeout: 15), 0, gateway.stderr)
        XCTAssertTrue(Processes.matching(marker).isEmpty, "the worker stopped with the gateway")

        let stderr = gateway.stderr
        let drained = try XCTUnwrap(stderr.range(of: "drained"), stderr)
        let workerStopping = try XCTUnwrap(stderr.range(of: "stopping worker"), stderr)
        XCTAssertLessThan(drained.lowerBound, workerStopping.lowerBound, "workers stop after the drain:\n\(stderr)")
        let line = gateway.stdout.split(separator: "\n").first { $0.contains("/function/last/slow/1500/in-flight") }
        XCTAssertNotNil(line, "the last request is in the access log: \(gateway.stdout)")
        XCTAssertTrue(line?.contains("\"status\":200") ?? false, String(line ?? ""))
    }

    func testHotDeployRedeployAndUndeployLoseNoRequest() throws {
        gateway = try PorticoProcess(config: noRoutes) { root in
            try self.writeFunction("live", in: root, manifest: "env: { GREETING: one }\nconcurrency: 2\nmaxWorkers: 2\n")
        }
        let root = gateway.directory
        XCTAssertEqual(try Curl.run(["\(gateway.http)/function/live/"]).status, 200)

        // Load runs the whole time; every response must be a 200 from one revision or the next.
        let load = LoadLoop(url: "\(gateway.http)/function/live/slow/50/x")
        load.start()
        defer { load.stop() }
        XCTAssertTrue(eventually { load.count >= 3 }, "the load runs before the redeploy")

        // Redeploy: a new revision takes new requests, the old one finishes what it has.
        try writeFunction("live", in: root, manifest: "env: { GREETING: two }\nconcurrency: 2\nmaxWorkers: 2\n")
        XCTAssertTrue(eventually { (try? Curl.run(["\(self.gateway.http)/function/live/"]).body.hasPrefix("two ")) == true },
                      gateway.stderr)

        // Deploy: a new folder is served.
        try writeFunction("added", in: root, manifest: "")
        XCTAssertTrue(eventually { (try? Curl.run(["\(self.gateway.http)/function/added/"]).status) == 200 })

        let loadAfterDeploys = load.count
        XCTAssertTrue(eventually { load.count >= loadAfterDeploys + 3 }, "and goes on after the deploys")
        let results = load.stop()
        XCTAssertGreaterThan(results.count, 10)
        XCTAssertEqual(results.filter { $0 != 200 }, [], "no request failed during deploys")

        // Undeploy: a request in flight when the folder goes still finishes. It is on its
        // worker before the folder goes, and takes long enough to be there still when the
        // gateway sees the folder gone.
        let inFlight = try RawSocket(port: gateway.httpPort, timeout: 20)
        inFlight.send("GET /function/added/slow/4000/x HTTP/1.1\r\nHost: x\r\n\r\n")
        XCTAssertTrue(eventually { self.gateway.functionLoad("added")?.inFlight == 1 }, "the request reached its worker")
        try FileManager.default.removeItem(at: root.appendingPathComponent("Functions/added"))
        let answer = RawHTTP.parseResponses(inFlight.receive { RawHTTP.completeResponses(in: $0) >= 1 })
        XCTAssertEqual(answer.first?.status, 200, "the in-flight request finished after the undeploy")
        XCTAssertTrue(eventually { (try? Curl.run(["\(self.gateway.http)/function/added/"]).status) == 404 },
                      "then the route is gone")
        XCTAssertEqual(try Curl.run(["\(gateway.http)/function/live/"]).status, 200)
    }

    func testRequestsQueuedDuringARedeployMoveToTheNewRevisionAndEverythingScalesToZero() throws {
        let manifest = { (greeting: String) in "env: { GREETING: \(greeting) }\nconcurrency: 1\nmaxWorkers: 1\nidleTimeout: 1s\n" }
        gateway = try PorticoProcess(config: noRoutes) { root in
            try self.writeFunction("queued", in: root, manifest: manifest("one"))
        }
        // One slow request holds the only worker; two more queue behind it. Each step waits
        // until the gateway shows it (a sleep can be too short on a slow machine), and the slow
        // request lasts until well after the new revision has started and taken the queue
        // (1.5 s could end first on a slow machine, and then its worker would serve the queue).
        let busy = try RawSocket(port: gateway.httpPort, timeout: 30)
        busy.send("GET /function/queued/slow/6000/busy HTTP/1.1\r\nHost: x\r\n\r\n")
        XCTAssertTrue(eventually { self.gateway.functionLoad("queued").map { $0 == (1, 0) } ?? false }, "the slow request runs")
        let waiting = (0..<2).map { _ in try? RawSocket(port: gateway.httpPort, timeout: 30) }
        for socket in waiting { socket?.send("GET /function/queued/after HTTP/1.1\r\nHost: x\r\n\r\n") }
        XCTAssertTrue(eventually { self.gateway.functionLoad("queued").map { $0 == (1, 2) } ?? false }, "two wait")

        try writeFunction("queued", in: gateway.directory, manifest: manifest("two"))
        XCTAssertEqual(RawHTTP.parseResponses(busy.receive { RawHTTP.completeResponses(in: $0) >= 1 }).first?.status, 200,
                       "the old revision finished its request")
        for socket in waiting {
            let response = RawHTTP.parseResponses(socket?.receive { RawHTTP.completeResponses(in: $0) >= 1 } ?? []).first
            XCTAssertEqual(response?.status, 200)
            XCTAssertTrue(response?.body.hasPrefix("two ") ?? false, "served by the new revision: \(response?.body ?? "")")
        }
        // Both revisions account for every request they served, so every worker goes idle and stops.
        XCTAssertTrue(eventually { Processes.matching(self.marker).isEmpty },
                      "a worker stayed up: \((try? Curl.run(["\(self.gateway.admin)/functions"]).body) ?? "")")
    }

    func testBadManifestIsReportedAndNothingElseStops() throws {
        gateway = try PorticoProcess(config: noRoutes) { root in
            try self.writeFunction("good", in: root, manifest: "")
        }
        XCTAssertEqual(try Curl.run(["\(gateway.http)/function/good/"]).status, 200)
        let folder = gateway.directory.appendingPathComponent("Functions/broken")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        try "command: [\"python3\", \"x.py\"]\nconcurency: 2\n".write(to: folder.appendingPathComponent("function.yaml"),
                                                                        atomically: true, encoding: .utf8)
        XCTAssertTrue(eventually {
            (try? Curl.run(["\(self.gateway.admin)/functions"]).body.contains("function.yaml:2:1: concurency: unknown key")) == true
        }, (try? Curl.run(["\(gateway.admin)/functions"]).body) ?? "")
        XCTAssertEqual(try Curl.run(["\(gateway.http)/function/good/"]).status, 200, "the good function keeps serving")
        XCTAssertTrue(gateway.stderr.contains("bad manifest"))

        // A bad change to a running function keeps the previous revision serving.
        try "command: [\"python3\", \"worker.py\"]\nmaxWorkers: 0\n".write(
            to: gateway.directory.appendingPathComponent("Functions/good/function.yaml"), atomically: true, encoding: .utf8)
        XCTAssertTrue(eventually {
            (try? Curl.run(["\(self.gateway.admin)/functions"]).body.contains("maxWorkers")) == true
        })
        XCTAssertEqual(try Curl.run(["\(gateway.http)/function/good/"]).status, 200)
    }

    func testExecModeAndDeployCommandAndSplitWithAService() throws {
        let upstream = try TestUpstream(name: "legacy")
        defer { upstream.stop() }
        gateway = try PorticoProcess(config: """
            services:
              legacy: { endpoints: [\(upstream.address)] }
            routes:
              - match: { prefix: /v2/ }
                split:
                  - { service: legacy, weight: 50 }
                  - { function: moved, weight: 50 }
            """)
        // `portico deploy` installs a folder the running gateway then picks up.
        let source = gateway.directory.appendingPathComponent("src/echo")
        try FileManager.default.createDirectory(at: source, withIntermediateDirectories: true)
        try "#!/bin/sh\nprintf '%s %s %s\\n' \"$REQUEST_METHOD\" \"$PATH_INFO\" \"$QUERY_STRING\"\ncat\n"
            .write(to: source.appendingPathComponent("run.sh"), atomically: true, encoding: .utf8)
        chmod(source.appendingPathComponent("run.sh").path, 0o755)
        try "command: [\"./run.sh\"]\nmode: exec\n".write(to: source.appendingPathComponent("function.yaml"), atomically: true, encoding: .utf8)
        let deployed = try runCommand(PorticoProcess.binary.path, ["deploy", source.path, "--name", "echo"],
                                      currentDirectory: gateway.directory)
        XCTAssertEqual(deployed.status, 0, deployed.output)
        XCTAssertTrue(eventually { (try? Curl.run(["\(self.gateway.http)/function/echo/"]).status) == 200 })
        let echoed = try Curl.run(["--data-binary", "hello body", "\(gateway.http)/function/echo/path?q=1"])
        XCTAssertEqual(echoed.body, "POST /path q=1\nhello body")

        // The split sends part of /v2/ to a function, the rest to the service.
        try writeFunction("moved", in: gateway.directory, manifest: "")
        XCTAssertTrue(eventually {
            (try? Curl.run(["\(self.gateway.admin)/functions"]).body.contains("\"moved\"")) == true
        })
        _ = try Curl.run(["--output", "/dev/null", "\(gateway.http)/v2/item/[1-40]"], timeout: 60)
        let functionShare = 40 - upstream.count()
        XCTAssertGreaterThan(upstream.count(), 5)
        XCTAssertGreaterThan(functionShare, 5, "some requests went to the function")

        let check = try runCommand(PorticoProcess.binary.path, ["check", "--config", gateway.configURL.path],
                                   currentDirectory: gateway.directory)
        XCTAssertEqual(check.status, 0, check.output)
        XCTAssertTrue(check.output.contains("2 functions"), check.output)
    }

    // MARK: Issue 14

    /// Writes `Functions/NAME/function.yaml` exactly as given (the command included) and any
    /// other `files` beside it.
    /// Processes that exit at once, many of them, four at a time: each exit must reach its
    /// request. A supervisor that died before it was watched used to be reaped as an orphan,
    /// its status lost, and its request left waiting for ever.
    func testManyProcessesThatExitAtOnceAllAnswer() throws {
        gateway = try PorticoProcess(config: noRoutes) { root in
            try self.writeRawFunction("quick", in: root, manifest: "command: [\"sh\", \"-c\", \"exit 0\"]\nmode: exec\nmaxWorkers: 4\n")
        }
        let statuses = Statuses()
        for _ in 0..<26 {
            for _ in 0..<4 { statuses.start(curl: ["--max-time", "10", "\(gateway.http)/function/quick/"]) }
            statuses.wait()
        }
        XCTAssertEqual(statuses.all.count, 104)
        XCTAssertEqual(Set(statuses.all), [200], "every request got its process's answer")
    }

    func writeRawFunction(_ name: String, in root: URL, manifest: String, files: [String: String] = [:]) throws {
        let folder = root.appendingPathComponent("Functions/\(name)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        for (file, text) in files {
            try text.write(to: folder.appendingPathComponent(file), atomically: true, encoding: .utf8)
            if file.hasSuffix(".sh") { chmod(folder.appendingPathComponent(file).path, 0o755) }
        }
        try manifest.write(to: folder.appendingPathComponent("function.yaml"), atomically: true, encoding: .utf8)
    }

    func functionsJSON() -> String {
        (try? Curl.run(["\(gateway.admin)/functions"]).body) ?? ""
    }

    /// Item 9: a failing build ran every 2 s forever. It runs once per change of the folder, its
    /// error stays in `/functions`, and a change of the folder builds it again.
    func testAFailingBuildRunsOncePerChangeOfTheFolder() throws {
        var attemptsFile = ""
        gateway = try PorticoProcess(config: noRoutes) { root in
            attemptsFile = root.appendingPathComponent("build-attempts").path
            try self.writeFunction("broken", in: root, manifest: """
                build: ["sh", "-c", "echo attempt >> \(attemptsFile); echo no compiler here >&2; exit 3"]
                """)
        }
        let attempts = { ((try? String(contentsOfFile: attemptsFile, encoding: .utf8)) ?? "").split(separator: "\n").count }
        XCTAssertTrue(eventually { self.functionsJSON().contains("failed (exit 3)") }, functionsJSON())
        XCTAssertEqual(try Curl.run(["\(gateway.http)/function/broken/"]).status, 404, "a function that never built has no route")
        // Three polls of the folder (every 2 s) at least: none of them builds the same content again.
        let watchUntil = Date().addingTimeInterval(6.5)
        while Date() < watchUntil, attempts() == 1 { usleep(250_000) }
        XCTAssertEqual(attempts(), 1, "built again without a change: \(gateway.stderr)")
        XCTAssertTrue(functionsJSON().contains("failed (exit 3)"), "the error stays visible: \(functionsJSON())")
        XCTAssertEqual(gateway.stderr.components(separatedBy: "function not deployed").count - 1, 1, "logged once: \(gateway.stderr)")
        let check = try runCommand(PorticoProcess.binary.path, ["check", "--config", gateway.configURL.path],
                                   currentDirectory: gateway.directory)
        XCTAssertEqual(check.status, 1, check.output)
        XCTAssertTrue(check.output.contains("Functions/broken/function.yaml:1:1: (deploy): build sh -c"), check.output)

        // A change of the folder is built at once, and a good build deploys.
        try writeFunction("broken", in: gateway.directory, manifest: """
            build: ["sh", "-c", "echo attempt >> \(attemptsFile)"]
            """)
        XCTAssertTrue(eventually { (try? Curl.run(["\(self.gateway.http)/function/broken/"]).status) == 200 },
                      functionsJSON())
        XCTAssertEqual(attempts(), 2)
        let clean = try runCommand(PorticoProcess.binary.path, ["check", "--config", gateway.configURL.path],
                                   currentDirectory: gateway.directory)
        XCTAssertEqual(clean.status, 0, clean.output)
    }

    /// Item 9: a build gets `buildTimeout`, then SIGTERM, then SIGKILL for all it started.
    func testABuildPastItsTimeoutIsStoppedWithEverythingItStarted() throws {
        gateway = try PorticoProcess(config: noRoutes) { root in
            try self.writeFunction("slowbuild", in: root, manifest: """
                build: ["sh", "-c", "python3 -c 'import time; time.sleep(300)' \(self.marker) & python3 -c 'import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(300)' \(self.marker)"]
                buildTimeout: 1s
                """)
        }
        XCTAssertTrue(eventually { self.functionsJSON().contains("timed out after 1s") }, functionsJSON())
        XCTAssertTrue(eventually { Processes.matching(self.marker).isEmpty },
                      "the build and what it started are gone: \(Processes.matching(marker).map(\.commandLine))")
    }

    /// Item 11: with maxWorkers 3 and queueLimit 2, a cold burst of 8 got 6 answers of 503: the
    /// requests waiting for starting workers counted against the queue limit.
    func testAColdBurstStartsWorkersUpToMaxWorkersBeforeAnyIsRefused() throws {
        gateway = try PorticoProcess(config: noRoutes) { root in
            try self.writeFunction("burst", in: root, manifest: "concurrency: 1\nmaxWorkers: 3\nqueueLimit: 2\n")
        }
        let result = try Curl.run(["--parallel", "--parallel-max", "8", "--parallel-immediate", "--output", "/dev/null",
                                   "--write-out", "%{http_code}\n", "\(gateway.http)/function/burst/slow/2000/[1-8]"], timeout: 60)
        let codes = result.body.split(separator: "\n").filter { !$0.contains(" ") }.map(String.init).sorted()
        XCTAssertEqual(codes, ["200", "200", "200", "200", "200", "503", "503", "503"],
                       "3 for the 3 workers a burst may start, 2 queued beyond them: \(gateway.stderr)")
    }

    /// Item 11: without `concurrency`, a function used to take every request on one worker.
    func testTheDefaultConcurrencyScalesOut() throws {
        gateway = try PorticoProcess(config: noRoutes) { root in
            try self.writeFunction("plain", in: root, manifest: "maxWorkers: 4\n")
        }
        let peak = PeakCounter()
        let gatewayPID = gateway.process.processIdentifier
        let marker = self.marker
        let sampler = Thread { peak.sample(marker: marker, childrenOf: gatewayPID, for: 60) }
        sampler.start()
        let result = try Curl.run(["--parallel", "--parallel-max", "12", "--parallel-immediate", "--output", "/dev/null",
                                   "--write-out", "%{http_code}\n", "\(gateway.http)/function/plain/slow/1000/[1-12]"], timeout: 60)
        peak.stop()
        let codes = result.body.split(separator: "\n").filter { !$0.contains(" ") }
        XCTAssertEqual(codes.count, 12)
        XCTAssertTrue(codes.allSatisfy { $0 == "200" }, "\(codes) \(gateway.stderr)")
        XCTAssertGreaterThanOrEqual(peak.maximum, 3, "12 concurrent requests at 4 per worker need 3 workers:\n\(peak.atPeak)")
    }

    /// Item 13: a worker's children outlived a gateway killed with SIGKILL (PR_SET_PDEATHSIG
    /// reaches only a direct child): a shell that starts python without exec, a `setsid`
    /// daemon, an exec-mode script in the middle of a request.
    func testGatewaySIGKILLLeavesNothingAWorkerStarted() throws {
        let daemonizing = PythonWorker.script(
            body: #""daemon\n""#,
            globals: "import subprocess\nsubprocess.Popen([\"setsid\", \"python3\", \"-c\", \"import time; time.sleep(300)\", \"\(marker)\"])")
        gateway = try PorticoProcess(config: noRoutes) { root in
            try self.writeRawFunction("shell", in: root, manifest: "command: [\"sh\", \"-c\", \"python3 worker.py \(self.marker); echo done\"]\n",
                                      files: ["worker.py": Self.workerScript])
            try self.writeFunction("daemon", in: root, manifest: "", script: daemonizing)
            try self.writeRawFunction("slowexec", in: root, manifest: "command: [\"./run.sh\"]\nmode: exec\n", files: [
                "run.sh": "#!/bin/sh\npython3 -c 'import time; time.sleep(300)' \(self.marker)\necho late\n",
            ])
        }
        XCTAssertEqual(try Curl.run(["\(gateway.http)/function/shell/"]).status, 200)
        XCTAssertEqual(try Curl.run(["\(gateway.http)/function/daemon/"]).status, 200)
        let inFlight = try RawSocket(port: gateway.httpPort, timeout: 10)
        inFlight.send("GET /function/slowexec/ HTTP/1.1\r\nHost: x\r\n\r\n")
        // shell: sh + python; daemon: python + its setsid child; slowexec: sh + python.
        XCTAssertTrue(eventually { Processes.workers(self.marker).count >= 5 },
                      "\(Processes.workers(marker).map(\.commandLine))")
        // The spawner and its spare supervisor (forked ahead of the next start) are the
        // gateway's children too, and go with it.
        let gatewayPID = gateway.process.processIdentifier
        func helpers() -> [Processes.Info] {
            Processes.all().filter { $0.parent == gatewayPID && $0.state != "Z"
                && ($0.commandLine.hasPrefix("portico-spawner") || $0.commandLine.hasPrefix("portico-spare")) }
        }
        XCTAssertTrue(eventually { helpers().count == 2 }, "a spawner and a spare: \(helpers().map(\.commandLine))")
        let helperPIDs = Set(helpers().map(\.pid))
        gateway.signal(SIGKILL)
        XCTAssertTrue(eventually { Processes.matching(self.marker).isEmpty },
                      "survivors: \(Processes.matching(marker).map { "\($0.pid) (parent \($0.parent)): \($0.commandLine)" })")
        XCTAssertTrue(eventually { !Processes.all().contains { helperPIDs.contains($0.pid) && $0.state != "Z" } },
                      "the spawner and the spare end with the gateway")
    }

    /// Item 13: a worker that leaves a `setsid` grandchild and exits leaked one process per
    /// start while it crash-looped, and they survived even a clean stop of the gateway.
    func testACrashLoopingWorkerLeaksNoGrandchild() throws {
        let leaving = """
            import subprocess, sys
            subprocess.Popen(["setsid", "python3", "-c", "import time; time.sleep(300)", "\(marker)"])
            sys.exit(1)
            """
        gateway = try PorticoProcess(config: noRoutes) { root in
            try self.writeFunction("leaky", in: root, manifest: "", script: leaving)
        }
        // Each request starts the function again; three starts in a row fail.
        XCTAssertTrue(eventually {
            _ = try? Curl.run(["\(self.gateway.http)/function/leaky/"])
            return self.gateway.stderr.components(separatedBy: "worker stopped").count - 1 >= 4
        }, gateway.stderr)
        XCTAssertTrue(eventually { Processes.matching(self.marker).isEmpty },
                      "left behind: \(Processes.matching(marker).map(\.commandLine))")
    }

    /// Item 13: an exec-mode script that leaves a process behind: the process held the
    /// response's stdout open (the request waited for it) and outlived the request.
    func testAnExecScriptsLeftoverEndsWithIt() throws {
        gateway = try PorticoProcess(config: noRoutes) { root in
            try self.writeRawFunction("leaver", in: root, manifest: "command: [\"./run.sh\"]\nmode: exec\nrequestTimeout: 20s\n", files: [
                "run.sh": "#!/bin/sh\npython3 -c 'import time; time.sleep(300)' \(self.marker) &\necho done\n",
            ])
        }
        let started = Date()
        let response = try Curl.run(["\(gateway.http)/function/leaver/"], timeout: 30)
        XCTAssertEqual(response.status, 200)
        XCTAssertEqual(response.body, "done\n")
        // Waiting for the leftover would last until the 20 s requestTimeout.
        XCTAssertLessThan(Date().timeIntervalSince(started), 10, "the response ends with the script")
        XCTAssertTrue(eventually { Processes.matching(self.marker).isEmpty },
                      "left behind: \(Processes.matching(marker).map(\.commandLine))")
    }

    /// Item 13: the gateway is a child subreaper, so a worker's descendants that lose their
    /// supervisor (killed from outside) are re-parented to the gateway, which kills them.
    func testWhatAKilledSupervisorLeavesIsKilledByTheGateway() throws {
        let daemonizing = PythonWorker.script(
            body: #""daemon\n""#,
            globals: "import subprocess\nsubprocess.Popen([\"setsid\", \"python3\", \"-c\", \"import time; time.sleep(300)\", \"\(marker)\"])")
        gateway = try PorticoProcess(config: noRoutes) { root in
            try self.writeFunction("daemon", in: root, manifest: "", script: daemonizing)
        }
        XCTAssertEqual(try Curl.run(["\(gateway.http)/function/daemon/"]).status, 200)
        XCTAssertTrue(eventually { Processes.workers(self.marker).count >= 2 })
        let gatewayPID = gateway.process.processIdentifier
        let supervisor = try XCTUnwrap(Processes.matching(marker).first { $0.parent == gatewayPID && $0.commandLine.hasPrefix("portico-supervise ") })
        kill(supervisor.pid, SIGKILL)
        XCTAssertTrue(eventually { Processes.matching(self.marker).isEmpty },
                      "survivors: \(Processes.matching(marker).map { "\($0.pid) (parent \($0.parent)): \($0.commandLine)" })")
        XCTAssertTrue(gateway.process.isRunning)
        XCTAssertEqual(try Curl.run(["\(gateway.http)/function/daemon/"]).status, 200, "and the function starts again")
    }

    /// Item 14: a redeploy whose code exits at start drained the working revision at once, and
    /// half the requests got 502 until the next deploy.
    func testBadCodeDoesNotReplaceAHealthyRevision() throws {
        gateway = try PorticoProcess(config: noRoutes) { root in
            try self.writeFunction("steady", in: root, manifest: "env: { GREETING: one }\nconcurrency: 2\nmaxWorkers: 2\n")
        }
        XCTAssertEqual(try Curl.run(["\(gateway.http)/function/steady/"]).status, 200)
        let load = LoadLoop(url: "\(gateway.http)/function/steady/slow/20/x")
        load.start()
        defer { load.stop() }

        try writeFunction("steady", in: gateway.directory, manifest: "env: { GREETING: two }\nconcurrency: 2\nmaxWorkers: 2\n",
                          script: "import sys\nsys.exit(1)\n")
        XCTAssertTrue(eventually { self.functionsJSON().contains("did not become ready") }, functionsJSON())
        let during = try Curl.run(["\(gateway.http)/function/steady/"])
        XCTAssertEqual(during.status, 200)
        XCTAssertTrue(during.body.hasPrefix("one "), "the old revision serves: \(during.body)")

        // A good change then deploys as usual.
        try writeFunction("steady", in: gateway.directory, manifest: "env: { GREETING: three }\nconcurrency: 2\nmaxWorkers: 2\n")
        XCTAssertTrue(eventually { (try? Curl.run(["\(self.gateway.http)/function/steady/"]).body.hasPrefix("three ")) == true },
                      functionsJSON())
        let results = load.stop()
        XCTAssertGreaterThan(results.count, 10)
        XCTAssertEqual(results.filter { $0 != 200 }, [], "no request failed while the bad code was deployed")
        XCTAssertFalse(functionsJSON().contains("did not become ready"), "the good revision clears the error")
    }

    /// Item 15: Python writes `__pycache__` beside the modules it imports, which changed the
    /// folder's hash and redeployed the function after its first start; a function writing
    /// into its folder redeployed on every write.
    func testWhatAWorkerWritesDoesNotChangeItsRevision() throws {
        let writing = PythonWorker.script(
            before: "open('requests.log', 'a').write(self.path + '\\n')",
            body: #"f"{helper.greeting()} {os.environ['K_REVISION']}\n""#,
            globals: "import helper")
        gateway = try PorticoProcess(config: noRoutes) { root in
            try self.writeFunction("writer", in: root, manifest: "", script: writing)
            try "def greeting():\n    return 'hi'\n".write(to: root.appendingPathComponent("Functions/writer/helper.py"),
                                                            atomically: true, encoding: .utf8)
        }
        let first = try Curl.run(["\(gateway.http)/function/writer/a"])
        XCTAssertEqual(first.status, 200, gateway.stderr)
        for n in 0..<5 { XCTAssertEqual(try Curl.run(["\(gateway.http)/function/writer/\(n)"]).status, 200) }
        // Three polls of the folder at least.
        let watchUntil = Date().addingTimeInterval(6.5)
        while Date() < watchUntil, !gateway.stderr.contains("redeploying") { usleep(250_000) }
        XCTAssertFalse(gateway.stderr.contains("redeploying"), "a worker's writes redeployed it: \(gateway.stderr)")
        let later = try Curl.run(["\(gateway.http)/function/writer/b"])
        XCTAssertEqual(later.body, first.body, "same revision, same worker")
        let source = gateway.directory.appendingPathComponent("Functions/writer").path
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: source).sorted(), ["function.yaml", "helper.py", "worker.py"],
                       "the worker wrote into its revision's copy, not into the folder")
    }
}

/// Samples how many worker processes run, keeping the highest count seen.
/// `@unchecked Sendable`: every field is guarded by `lock`, which the compiler cannot connect to them.
final class PeakCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var peak = 0
    private var peakProcesses: [Processes.Info] = []
    private var running = true

    var maximum: Int { lock.withLock { peak } }
    /// The processes seen at the peak, for a failure message.
    var atPeak: String {
        lock.withLock { peakProcesses.map { "\($0.pid) (parent \($0.parent), \($0.state)): \($0.commandLine)" }.joined(separator: "\n") }
    }

    /// Counts the gateway's children with `marker` on their command line: the workers it
    /// started. Their own children do not count; on a machine with pyenv, `python3` is a shell
    /// shim whose subshells carry the same command line while the worker starts.
    func sample(marker: String, childrenOf gateway: Int32, for seconds: TimeInterval) {
        let deadline = Date().addingTimeInterval(seconds)
        while lock.withLock({ running }) && Date() < deadline {
            let processes = Processes.matching(marker).filter { $0.parent == gateway }
            lock.withLock {
                if processes.count > peak {
                    peak = processes.count
                    peakProcesses = processes
                }
            }
            usleep(10_000)
        }
    }

    func stop() { lock.withLock { running = false } }
}

/// Sends one request after another until stopped; records each status.
/// `@unchecked Sendable`: `statuses` and `running` are guarded by `lock`; `thread` is set by
/// `start` and read by `stop`, both on the test's thread.
final class LoadLoop: @unchecked Sendable {
    private let url: String
    private let lock = NSLock()
    private var statuses: [Int] = []
    private var running = true
    private var thread: Thread?
    private let done = DispatchSemaphore(value: 0)

    init(url: String) { self.url = url }

    /// Requests answered so far.
    var count: Int { lock.withLock { statuses.count } }

    func start() {
        let thread = Thread { [self] in
            while lock.withLock({ running }) {
                let status = (try? Curl.run([url], timeout: 10).status) ?? -1
                lock.withLock { statuses.append(status) }
            }
            done.signal()
        }
        self.thread = thread
        thread.start()
    }

    @discardableResult
    func stop() -> [Int] {
        let wasRunning = lock.withLock { () -> Bool in
            defer { running = false }
            return running
        }
        if wasRunning { done.wait() }
        return lock.withLock { statuses }
    }
}
