import Foundation
import NIOConcurrencyHelpers
import PorticoConfig
@testable import PorticoFunctions
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// Real child processes: what they are given, how they end, and that they are reaped.
final class ChildProcessTests: XCTestCase {
    let environment = ["PATH": "/usr/local/bin:/usr/bin:/bin"]

    private func runToExit(_ command: [String], environment: [String: String]? = nil, openFiles: Int? = nil) throws -> (ChildExit, String) {
        try runChildToExit(command, environment: environment ?? self.environment, openFiles: openFiles)
    }

    func testExitStatusAndOutputAreReported() throws {
        let (exit, output) = try runToExit(["sh", "-c", "echo hi; echo oops >&2; exit 3"])
        XCTAssertEqual(exit, .exited(3))
        XCTAssertEqual(output, "hi\noops\n")
    }

    func testTheEnvironmentIsExactlyWhatWasGiven() throws {
        let (_, output) = try runToExit(["sh", "-c", "echo \"$GREETING|$HOME_SECRET\""],
                                        environment: environment.merging(["GREETING": "hello"]) { $1 })
        XCTAssertEqual(output, "hello|\n", "nothing leaks from the gateway's own environment")
    }

    func testOpenFilesLimitApplies() throws {
        let (_, output) = try runToExit(["sh", "-c", "ulimit -n"], openFiles: 64)
        XCTAssertEqual(output.trimmingCharacters(in: .whitespacesAndNewlines), "64")
    }

    func testMissingCommandFailsToSpawn() {
        XCTAssertThrowsError(try ChildProcess.spawn(command: ["no-such-command-here"], directory: "/tmp", environment: environment)) { error in
            guard case SpawnError.commandNotFound = error else { return XCTFail("\(error)") }
        }
    }

    func testSignalGroupStopsTheWorkerAndWhatItStarted() throws {
        let spawned = try ChildProcess.spawn(
            command: ["sh", "-c", "sleep 30 & exec sleep 31"], directory: "/tmp", environment: environment)
        let exited = expectation(description: "exit")
        ChildReaper.shared.watch(spawned.process.pid) { _ in exited.fulfill() }
        /// The command lines of the live processes in the worker's group, the supervisor aside.
        func groupMembers() -> [String] {
            ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).compactMap { entry in
                guard let pid = Int32(entry), pid != spawned.process.pid, getpgid(pid) == spawned.process.pid,
                      let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
                      !status.contains("State:\tZ"),
                      let raw = try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(pid)/cmdline")) else { return nil }
                return String(decoding: raw.map { $0 == 0 ? UInt8(ascii: " ") : $0 }, as: UTF8.self)
            }
        }
        // Both sleeps, not just any member: the supervisor's fresh fork is a member before it
        // has run the shell, and the background sleep this test is about must exist first.
        XCTAssertTrue(eventually { Set(groupMembers()).isSuperset(of: ["sleep 30 ", "sleep 31 "]) },
                      "the worker started a background process in its group: \(groupMembers())")
        spawned.process.signalGroup(SIGTERM)
        wait(for: [exited], timeout: 20)
        XCTAssertTrue(eventually { groupMembers().isEmpty }, "the background sleep went with its group")
    }
}

/// Polls `condition` until it holds or `timeout` passes; generous, since it costs nothing when
/// the condition comes and a busy machine starts and reaps processes slowly.
func eventually(timeout: TimeInterval = 20, _ condition: () -> Bool) -> Bool {
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
        if condition() { return true }
        usleep(20_000)
    }
    return condition()
}
final class FunctionInstallerTests: XCTestCase {
    func testInstallValidatesThenSwapsAtomically() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("portico-install-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        let source = root.appendingPathComponent("src")
        let functions = root.appendingPathComponent("Functions").path
        try FileManager.default.createDirectory(at: source, withIntermediateDirectories: true)

        try "comand: [\"x\"]\n".write(to: source.appendingPathComponent("function.yaml"), atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try FunctionInstaller.install(source: source.path, name: "demo", functionsDirectory: functions))
        XCTAssertFalse(FileManager.default.fileExists(atPath: functions + "/demo"), "a bad function is not installed")

        try "command: [\"./one\"]\n".write(to: source.appendingPathComponent("function.yaml"), atomically: true, encoding: .utf8)
        try FunctionInstaller.install(source: source.path, name: "demo", functionsDirectory: functions)
        XCTAssertTrue(try String(contentsOfFile: functions + "/demo/function.yaml", encoding: .utf8).contains("./one"))

        try "command: [\"./two\"]\n".write(to: source.appendingPathComponent("function.yaml"), atomically: true, encoding: .utf8)
        try FunctionInstaller.install(source: source.path, name: "demo", functionsDirectory: functions)
        XCTAssertTrue(try String(contentsOfFile: functions + "/demo/function.yaml", encoding: .utf8).contains("./two"))
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: functions)
        XCTAssertEqual(leftovers, ["demo"], "no staging folder is left behind")
    }
}

extension XCTestCase {
    /// Spawns `command` in /tmp with stderr merged into stdout; waits for its exit and its output.
    func runChildToExit(_ command: [String], environment: [String: String], openFiles: Int? = nil) throws -> (ChildExit, String) {
        let (exit, output, _) = try runChildToExitWithPID(command, environment: environment, openFiles: openFiles)
        return (exit, output)
    }

    /// `runChildToExit`, with the pid of the child's supervisor.
    func runChildToExitWithPID(_ command: [String], environment: [String: String],
                               openFiles: Int? = nil) throws -> (ChildExit, String, pid_t) {
        let spawned = try ChildProcess.spawn(command: command, directory: "/tmp", environment: environment,
                                             mergeStderr: true, openFilesLimit: openFiles)
        let exited = expectation(description: "exit")
        let outcome = NIOLockedValueBox<ChildExit?>(nil)
        ChildReaper.shared.watch(spawned.process.pid) { exit in
            outcome.withLockedValue { $0 = exit }
            exited.fulfill()
        }
        let output = String(decoding: FileHandle(fileDescriptor: spawned.stdout, closeOnDealloc: true).readDataToEndOfFile(), as: UTF8.self)
        wait(for: [exited], timeout: 10)
        return (try XCTUnwrap(outcome.withLockedValue { $0 }), output, spawned.process.pid)
    }
}

/// The supervisor every child runs under (Sources/CPorticoSpawn/supervise.c).
final class SupervisorTests: XCTestCase {
    let environment = ["PATH": "/usr/local/bin:/usr/bin:/bin"]
    let marker = "supervisor-test-\(UUID().uuidString.prefix(8))"

    private func processes() -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).compactMap { entry in
            guard Int32(entry) != nil,
                  let raw = try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(entry)/cmdline")), !raw.isEmpty else { return nil }
            let commandLine = String(decoding: raw.map { $0 == 0 ? UInt8(ascii: " ") : $0 }, as: UTF8.self)
            return commandLine.contains(marker) && !commandLine.hasPrefix("portico-supervise ") ? commandLine : nil
        }
    }

    /// A `setsid` grandchild leaves the process group, so a signal to the group misses it.
    func testKillAllReachesASetsidGrandchild() throws {
        let sleeper = "python3 -c 'import time; time.sleep(300)' \(marker)"
        let spawned = try ChildProcess.spawn(command: ["sh", "-c", "setsid \(sleeper) & \(sleeper)"], directory: "/tmp",
                                             environment: environment)
        let exited = expectation(description: "exit")
        let outcome = NIOLockedValueBox<ChildExit?>(nil)
        ChildReaper.shared.watch(spawned.process.pid) { exit in
            outcome.withLockedValue { $0 = exit }
            exited.fulfill()
        }
        XCTAssertTrue(eventually { self.processes().filter { !$0.hasPrefix("sh ") }.count >= 2 }, "\(processes())")
        spawned.process.killAll()
        wait(for: [exited], timeout: 10)
        XCTAssertEqual(outcome.withLockedValue { $0 }, .signaled(SIGKILL), "the supervisor exits the way its command did")
        XCTAssertTrue(eventually { self.processes().isEmpty }, "left behind: \(processes())")
    }

    /// A SIGTERM to the group right after the spawn stops the worker, whether it comes before
    /// the supervisor forks or just after, while the fork still has the supervisor's ignored
    /// SIGTERM: both were lost (about one in four from the moment the fork showed), and the
    /// worker ran on until the gateway's grace period ran out.
    func testAStopSentRightAfterTheSpawnIsNotLost() throws {
        for round in 0..<40 {
            let spawned = try ChildProcess.spawn(command: ["sleep", "30"], directory: "/tmp", environment: environment)
            let supervisor = spawned.process.pid
            let exited = DispatchSemaphore(value: 0)
            let outcome = NIOLockedValueBox<ChildExit?>(nil)
            ChildReaper.shared.watch(supervisor) { exit in
                outcome.withLockedValue { $0 = exit }
                exited.signal()
            }
            if round % 2 == 1 {
                // As soon as the fork exists: the supervisor's one child.
                let children = "/proc/\(supervisor)/task/\(supervisor)/children"
                let deadline = Date().addingTimeInterval(10)
                while ((try? String(contentsOfFile: children, encoding: .utf8)) ?? "").isEmpty && Date() < deadline {}
            }
            spawned.process.signalGroup(SIGTERM)
            let stopped = exited.wait(timeout: .now() + 5) == .success
            if !stopped {
                spawned.process.killAll()
                _ = exited.wait(timeout: .now() + 10)
            }
            XCTAssertTrue(stopped, "round \(round): the SIGTERM was lost")
            XCTAssertEqual(outcome.withLockedValue { $0 }, .signaled(SIGTERM), "round \(round)")
        }
    }

    /// When the command exits, whatever it left running goes too (exec mode, crash loops).
    func testWhatACommandLeavesBehindDiesWithIt() throws {
        // The command exits only once its `setsid` grandchild is running, so the test cannot
        // pass by the grandchild never having started.
        let started = "/tmp/portico-grandchild-\(UUID().uuidString)"
        defer { unlink(started) }
        let grandchild = "import sys, time; open(sys.argv[1], 'w').close(); time.sleep(300)"
        let spawned = try ChildProcess.spawn(
            command: ["sh", "-c", "setsid python3 -c \"\(grandchild)\" \(started) \(marker) & "
                      + "while [ ! -e \(started) ]; do sleep 0.05; done; exit 4"], directory: "/tmp",
            environment: environment)
        let exited = expectation(description: "exit")
        let outcome = NIOLockedValueBox<ChildExit?>(nil)
        ChildReaper.shared.watch(spawned.process.pid) { exit in
            outcome.withLockedValue { $0 = exit }
            exited.fulfill()
        }
        wait(for: [exited], timeout: 10)
        XCTAssertEqual(outcome.withLockedValue { $0 }, .exited(4))
        XCTAssertTrue(FileManager.default.fileExists(atPath: started), "the grandchild ran")
        XCTAssertTrue(eventually { self.processes().isEmpty }, "left behind: \(processes())")
        spawned.process.killAll()
    }
}

/// The orphan sweep reads `/proc/self/task/*/children` four times a second for the gateway's
/// life. Through Foundation (`String(contentsOfFile:)`), each read of a `/proc` file leaked
/// its buffer, and an idle gateway grew by megabytes a minute.
final class ChildReaperProcReadTests: XCTestCase {
    private func residentKiB() -> Int {
        let status = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
        for line in status.split(separator: "\n") where line.hasPrefix("VmRSS:") {
            return Int(line.split(separator: " ", omittingEmptySubsequences: true)[1]) ?? 0
        }
        return 0
    }

    func testReadingTheChildrenAgainAndAgainDoesNotGrowTheProcess() throws {
        let child = Process()
        child.executableURL = URL(fileURLWithPath: "/bin/sleep")
        child.arguments = ["30"]
        try child.run()
        defer {
            child.terminate()
            child.waitUntilExit()
        }
        XCTAssertTrue(ChildReaper.children().contains(child.processIdentifier), "a child is seen")
        let threads = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task").count) ?? 1
        let before = residentKiB()
        // 4 KiB leaked per file read: 2,000 sweeps of `threads` files would be 8 MiB a thread.
        for _ in 0..<2000 { _ = ChildReaper.children() }
        let grown = residentKiB() - before
        XCTAssertLessThan(grown, 4096, "RSS grew by \(grown) KiB over 2,000 sweeps of \(threads) threads")
    }
}
