import CPorticoSpawn
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
@testable import PorticoFunctions
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// The spawner (Sources/CPorticoSpawn/spawner.c), which forks every supervisor, and the
/// supervisor's readiness report: real processes, real sockets.
final class SupervisorSpawnerTests: XCTestCase {
    let environment = ["PATH": "/usr/local/bin:/usr/bin:/bin"]

    /// `comm` and the parent pid, from `/proc/PID/stat`.
    private func status(of pid: pid_t) -> (comm: String, parent: pid_t)? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let open = stat.firstIndex(of: "("), let close = stat.lastIndex(of: ")") else { return nil }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 1, let parent = pid_t(fields[1]) else { return nil }
        return (String(stat[stat.index(after: open)..<close]), parent)
    }

    /// The live (not zombie) spawners whose parent is this process.
    private func spawners() -> [pid_t] {
        liveChildren(named: "portico-spawner")
    }

    /// The live spare supervisors whose parent is this process.
    private func spares() -> [pid_t] {
        liveChildren(named: "portico-spare")
    }

    /// Whether `pid` exists at all, a zombie included.
    private func exists(_ pid: pid_t) -> Bool {
        FileManager.default.fileExists(atPath: "/proc/\(pid)")
    }

    /// This process's live (not zombie) children whose `comm` is `name`.
    private func liveChildren(named name: String) -> [pid_t] {
        ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).compactMap { entry in
            guard let pid = pid_t(entry), let status = status(of: pid), status.comm == name,
                  status.parent == getpid(),
                  let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
                  !stat.contains(") Z ") else { return nil }
            return pid
        }
    }

    private func runToExit(_ command: [String]) throws -> (ChildExit, String) {
        try runChildToExit(command, environment: environment)
    }

    /// The supervisor is a fork of the spawner, yet the caller's own child (CLONE_PARENT): the
    /// caller reaps it and learns the command's exit from it, as before.
    func testSupervisorsAreForkedByTheSpawnerAsTheCallersChildren() throws {
        let spawned = try ChildProcess.spawn(command: ["sleep", "30"], directory: "/tmp", environment: environment)
        let exited = expectation(description: "exit")
        ChildReaper.shared.watch(spawned.process.pid) { _ in exited.fulfill() }
        let supervisor = try XCTUnwrap(status(of: spawned.process.pid))
        XCTAssertEqual(supervisor.comm, "portico-supervi")
        XCTAssertEqual(supervisor.parent, getpid())
        XCTAssertEqual(spawners().count, 1, "one spawner, a child of this process")
        spawned.process.killAll()
        wait(for: [exited], timeout: 10)
    }

    /// A spawner that dies is replaced: the spawn in flight goes the usual way, and the next
    /// one starts a new spawner.
    func testASpawnerThatDiesIsReplaced() throws {
        _ = try runToExit(["true"])
        let first = try XCTUnwrap(spawners().first, "a spawner runs after a spawn")
        kill(first, SIGKILL)
        XCTAssertTrue(eventually { !self.spawners().contains(first) }, "the killed spawner is reaped")
        for round in 0..<3 {
            let (exit, output) = try runToExit(["sh", "-c", "echo round \(round)"])
            XCTAssertEqual(exit, .exited(0))
            XCTAssertEqual(output, "round \(round)\n")
        }
        let second = spawners()
        XCTAssertEqual(second.count, 1)
        XCTAssertNotEqual(second.first, first)
    }

    /// Once a start is over, the spawner forks a spare supervisor ahead of time (this process's
    /// child, in its own process group already); the next spawn is that spare, which runs the
    /// command like any supervisor; and another spare follows once that start is over.
    func testASpareForkedAheadIsTheNextSpawnsSupervisor() throws {
        let spare = try spareAfterAStart()
        XCTAssertEqual(getpgid(spare), spare, "its own process group, as a supervisor has from its start")
        let (exit, output, pid) = try runChildToExitWithPID(["sh", "-c", "echo served by $PPID"], environment: environment)
        XCTAssertEqual(pid, spare, "the spawn is the spare")
        XCTAssertEqual(output, "served by \(spare)\n", "the command ran under the spare, its supervisor")
        XCTAssertEqual(exit, .exited(0))
        XCTAssertTrue(eventually { self.spares().count == 1 && self.spares() != [spare] }, "then another spare")
    }

    /// The spare the spawner forks once a start is over.
    private func spareAfterAStart() throws -> pid_t {
        _ = try runToExit(["true"])
        XCTAssertTrue(eventually { self.spares().count == 1 }, "a spare after a start: \(spares())")
        return try XCTUnwrap(spares().first)
    }

    /// A spare killed from outside is noticed at the reaper's next look, without waiting for a
    /// spawn: the spawner names it (its socket has ended), it is reaped, and a new one is made.
    func testASpareKilledFromOutsideIsReapedAndReplaced() throws {
        let spare = try spareAfterAStart()
        kill(spare, SIGKILL)
        XCTAssertTrue(eventually { !self.exists(spare) }, "the dead spare is reaped, not left a zombie")
        XCTAssertTrue(eventually { self.spares().count == 1 && self.spares() != [spare] }, "and replaced")
        let (exit, output) = try runToExit(["sh", "-c", "echo after"])
        XCTAssertEqual(exit, .exited(0))
        XCTAssertEqual(output, "after\n")
    }

    /// A spare ends with its spawner, and both are reaped at the reaper's next look; the next
    /// spawn starts a new spawner.
    func testASpareEndsWithItsSpawnerAndIsReaped() throws {
        let spare = try spareAfterAStart()
        let spawner = try XCTUnwrap(spawners().first)
        kill(spawner, SIGKILL)
        XCTAssertTrue(eventually { !self.exists(spare) && !self.exists(spawner) }, "both reaped")
        let (exit, output) = try runToExit(["sh", "-c", "echo after"])
        XCTAssertEqual(exit, .exited(0))
        XCTAssertEqual(output, "after\n")
    }

    /// A stop signal that reached a spare from anyone but the gateway while it waited (a stray
    /// `kill`) does not stop the worker it then starts; the spare holds it, as every new
    /// supervisor holds stop signals, so without this the worker would get it at once.
    func testAStrayStopSentToASpareDoesNotStopItsWorker() throws {
        let spare = try spareAfterAStart()
        let killer = Process()
        killer.executableURL = URL(fileURLWithPath: "/bin/kill")
        killer.arguments = ["-TERM", String(spare)]
        try killer.run()
        killer.waitUntilExit()
        XCTAssertEqual(killer.terminationStatus, 0)
        XCTAssertTrue(eventually {
            ((try? String(contentsOfFile: "/proc/\(spare)/status", encoding: .utf8)) ?? "")
                .split(separator: "\n").contains { ($0.hasPrefix("SigPnd:") || $0.hasPrefix("ShdPnd:")) && !$0.hasSuffix("0000000000000000") }
        }, "the stop is pending in the spare")
        let (exit, output, pid) = try runChildToExitWithPID(["sh", "-c", "sleep 0.2; echo still here"], environment: environment)
        XCTAssertEqual(pid, spare, "the spawn is the spare")
        XCTAssertEqual(exit, .exited(0), output)
        XCTAssertEqual(output, "still here\n")
    }

    /// The spawner opens the directory before it forks, so a missing one fails the spawn itself.
    func testAMissingDirectoryFailsTheSpawn() {
        XCTAssertThrowsError(try ChildProcess.spawn(command: ["/bin/true"], directory: "/nonexistent-\(UUID().uuidString)",
                                                    environment: environment)) { error in
            guard case SpawnError.failed(_, let code) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(code, ENOENT)
        }
    }

    /// A datagram socket pair: the test's end (nonblocking) and the end a supervisor gets.
    private func reportSocket() throws -> (read: Int32, write: Int32) {
        var ends: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &ends) == 0 else {
            throw SpawnError.pipe(errno)
        }
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(ends[0], SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        return (ends[0], ends[1])
    }

    /// The supervisor reports the port once it accepts, with its own pid, and only then; the
    /// connection it found the port ready with is the gateway's to take, and the worker serves
    /// on it. Once the gateway says it has it, the supervisor lets go of its own copy.
    func testTheSupervisorReportsWhenThePortAcceptsAndHandsOverItsConnection() throws {
        let (readEnd, writeEnd) = try reportSocket()
        defer { close(readEnd); close(writeEnd) }
        let port = try FreePort.pick()
        // Listens only once the test says so, after it has seen no report: a report before the
        // port accepts would show there. Then it echoes a line of its first connection, and
        // says when that connection ends (every copy of it closed).
        let spawned = try spawnListeningOnCue(port: port, report: writeEnd, firstConnection: """
            line = c.makefile().readline(); c.sendall(line.encode())
            print('ended' if c.recv(1) == b'' else 'more', flush=True)
            """)
        let stdin = try XCTUnwrap(spawned.stdin)
        var report = portico_ready_report()
        // The supervisor probes from the start (every 50 us at first): python3 is up and
        // waiting on stdin once its first line of output would be, so look after it has run a while.
        XCTAssertTrue(eventually { (try? String(contentsOfFile: "/proc/\(spawned.process.pid)/task/\(spawned.process.pid)/children",
                                                  encoding: .utf8))?.isEmpty == false }, "the worker runs")
        XCTAssertEqual(recv(readEnd, &report, MemoryLayout<portico_ready_report>.size, Int32(MSG_DONTWAIT)), -1,
                       "no report while the port does not accept")
        XCTAssertEqual(write(stdin, "listen\n", 7), 7)
        XCTAssertEqual(recv(readEnd, &report, MemoryLayout<portico_ready_report>.size, 0), MemoryLayout<portico_ready_report>.size)
        XCTAssertEqual(Int(report.port), port)
        XCTAssertEqual(report.supervisor_pid, spawned.process.pid)
        XCTAssertEqual(MemoryLayout<portico_ready_report>.size, 12, "what WorkerReadinessReports reads")
        let reported = Date()

        // The supervisor holds its copy until told, then closes it, before its own limit of
        // 0.5 s from its probe (the test tells it well within that, or says it could not).
        let held = "/proc/\(spawned.process.pid)/fd/\(report.connection_fd)"
        XCTAssertTrue(((try? FileManager.default.destinationOfSymbolicLink(atPath: held)) ?? "").hasPrefix("socket:"), held)
        let connection = portico_take_descriptor(spawned.process.pid, report.connection_fd)
        let refusal = errno
        spawned.process.releaseHeldConnection()
        XCTAssertLessThan(Date().timeIntervalSince(reported), 0.2, "too slow to tell the hold from its limit")
        XCTAssertTrue(eventually(timeout: 0.25) { !FileManager.default.fileExists(atPath: held) }, "let go of when told")
        guard connection >= 0 else {
            // A kernel without pidfd_getfd, or a seccomp profile that refuses it: the gateway
            // connects itself then (WorkerProcess.handOverRefused).
            XCTAssertTrue([EPERM, ENOSYS, EACCES].contains(refusal), "pidfd_getfd: \(String(cString: strerror(refusal)))")
            return
        }
        defer { close(connection) }
        XCTAssertEqual(portico_peer_port(connection), Int32(port))
        XCTAssertEqual(write(connection, "hello\n", 6), 6)
        var echoed = [UInt8](repeating: 0, count: 6)
        XCTAssertEqual(read(connection, &echoed, 6), 6)
        XCTAssertEqual(String(decoding: echoed, as: UTF8.self), "hello\n", "the worker serves on the handed-over connection")
        // Its last copy closed, the worker sees the connection end.
        close(connection)
        XCTAssertEqual(readOutput(spawned.stdout), "ended\n")
    }

    /// Told before its probe succeeds (the gateway's own probe found the worker first), the
    /// supervisor keeps no connection: the report says so, and the worker's first connection
    /// ends at once.
    func testAConnectionNotWantedIsNotHeld() throws {
        let (readEnd, writeEnd) = try reportSocket()
        defer { close(readEnd); close(writeEnd) }
        let port = try FreePort.pick()
        let spawned = try spawnListeningOnCue(port: port, report: writeEnd,
                                              firstConnection: "print('ended' if c.recv(1) == b'' else 'more', flush=True)")
        let stdin = try XCTUnwrap(spawned.stdin)
        spawned.process.releaseHeldConnection()
        XCTAssertEqual(write(stdin, "listen\n", 7), 7)
        var report = portico_ready_report()
        XCTAssertEqual(recv(readEnd, &report, MemoryLayout<portico_ready_report>.size, 0), MemoryLayout<portico_ready_report>.size)
        XCTAssertEqual(Int(report.port), port)
        XCTAssertEqual(report.connection_fd, -1, "no connection held")
        let started = Date()
        XCTAssertEqual(readOutput(spawned.stdout), "ended\n")
        XCTAssertLessThan(Date().timeIntervalSince(started), 0.4, "closed at once, not after the 0.5 s a held one may last")
    }

    /// A Python worker that listens on `port` only once told (a line on its stdin), then runs
    /// `firstConnection` (Python lines, `c` its first accepted connection) and waits to be
    /// killed; under a
    /// supervisor that reports on `report`, and killed (its pipes closed) when the test ends.
    private func spawnListeningOnCue(port: Int, report: Int32, firstConnection: String) throws -> ChildProcess.Spawned {
        let server = """
            import os, signal, socket, sys
            sys.stdin.readline()
            s = socket.socket(); s.bind(('127.0.0.1', int(os.environ['PORT']))); s.listen()
            c, _ = s.accept()
            \(firstConnection)
            signal.pause()
            """
        let spawned = try ChildProcess.spawn(
            command: ["python3", "-c", server], directory: "/tmp", environment: environment.merging(["PORT": String(port)]) { $1 },
            withStdin: true, readiness: ChildProcess.ReadinessReport(port: port, socket: report))
        let exited = DispatchSemaphore(value: 0)
        ChildReaper.shared.watch(spawned.process.pid) { _ in exited.signal() }
        addTeardownBlock {
            spawned.process.killAll()
            XCTAssertEqual(exited.wait(timeout: .now() + 10), .success, "the worker ends with its supervisor")
            spawned.stdin.map { _ = close($0) }
            close(spawned.stdout)
            spawned.stderr.map { _ = close($0) }
        }
        return spawned
    }

    /// What the worker printed first, waiting up to 10 s for it ("" if nothing came).
    private func readOutput(_ fd: Int32) -> String {
        var ready = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&ready, 1, 10_000) == 1 else { return "" }
        var bytes = [UInt8](repeating: 0, count: 64)
        let count = read(fd, &bytes, bytes.count)
        return String(decoding: bytes.prefix(max(0, count)), as: UTF8.self)
    }

    /// A command that never listens gets no report; the supervisor's probing ends with it.
    func testACommandThatNeverListensIsNotReported() throws {
        let (readEnd, writeEnd) = try reportSocket()
        defer { close(readEnd); close(writeEnd) }
        let port = try FreePort.pick()
        let spawned = try ChildProcess.spawn(command: ["sleep", "0.3"], directory: "/tmp", environment: environment,
                                             readiness: ChildProcess.ReadinessReport(port: port, socket: writeEnd))
        let exited = expectation(description: "exit")
        ChildReaper.shared.watch(spawned.process.pid) { _ in exited.fulfill() }
        wait(for: [exited], timeout: 10)
        var report = portico_ready_report()
        XCTAssertEqual(recv(readEnd, &report, MemoryLayout<portico_ready_report>.size, Int32(MSG_DONTWAIT)), -1)
        XCTAssertEqual(errno, EAGAIN)
    }

    /// The gateway's side: a report reaches the worker waiting on that port and supervisor
    /// only; a stale one (another supervisor, or a port nobody waits on) is dropped.
    func testReportsReachOnlyTheWorkerTheyAreFor() throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? group.syncShutdownGracefully() }
        let loop = group.next()
        let ready = NIOLockedValueBox<[String]>([])
        let socket = try loop.submit { () -> Int32 in
            let reports = try XCTUnwrap(WorkerReadinessReports.on(loop))
            XCTAssertTrue(WorkerReadinessReports.on(loop) === reports, "one per loop")
            reports.expect(port: 4100, supervisor: 42) { fd in ready.withLockedValue { $0.append("4100 \(fd)") } }
            reports.expect(port: 4200, supervisor: 43) { fd in ready.withLockedValue { $0.append("4200 \(fd)") } }
            return reports.socket
        }.wait()
        func send(port: Int32, supervisor: Int32) {
            var report = portico_ready_report(port: port, supervisor_pid: supervisor, connection_fd: port / 100)
            XCTAssertEqual(Glibc.send(socket, &report, MemoryLayout<portico_ready_report>.size, 0), 12)
        }
        send(port: 4100, supervisor: 99)  // another supervisor's
        send(port: 4300, supervisor: 42)  // nobody waits on this port
        send(port: 4200, supervisor: 43)
        XCTAssertTrue(eventually { ready.withLockedValue { $0 } == ["4200 42"] }, "\(ready.withLockedValue { $0 })")
        send(port: 4100, supervisor: 42)
        send(port: 4100, supervisor: 42)  // once only
        XCTAssertTrue(eventually { ready.withLockedValue { $0 } == ["4200 42", "4100 41"] })
        try loop.submit {}.wait()
        XCTAssertEqual(ready.withLockedValue { $0 }, ["4200 42", "4100 41"])
    }
}
