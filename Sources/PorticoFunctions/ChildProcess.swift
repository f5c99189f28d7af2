import CPorticoSpawn
import Foundation
import NIOConcurrencyHelpers

#if canImport(Glibc)
import Glibc
#endif

/// How a child process ended: a result to record, not an error.
public enum ChildExit: Sendable, Equatable, CustomStringConvertible {
    case exited(Int32)
    case signaled(Int32)

    public var description: String {
        switch self {
        case .exited(let code): return "exit \(code)"
        case .signaled(let signal): return "signal \(signal)"
        }
    }
}

public enum SpawnError: Error, CustomStringConvertible {
    case commandNotFound(String)
    case failed(command: String, errno: Int32)
    case pipe(Int32)

    public var description: String {
        switch self {
        case .commandNotFound(let command): return "command not found: \(command)"
        case .failed(let command, let code): return "cannot start \(command): \(String(cString: strerror(code)))"
        case .pipe(let code): return "pipe: \(String(cString: strerror(code)))"
        }
    }
}

/// A child process in its own process group, reaped by `ChildReaper`.
///
/// It runs under a supervisor (`Sources/CPorticoSpawn/supervise.c`): `pid` is the supervisor's,
/// which shares its process group with the command and exits the way the command exits. The
/// supervisor is a child subreaper holding a pipe from the gateway: when the command exits, or
/// the pipe closes (`killAll`, or the gateway dying in any way, SIGKILL included), it kills
/// everything the command started, `setsid` escapees included, so nothing outlives either.
public struct ChildProcess: Sendable {
    public let pid: pid_t
    /// The gateway's end of the supervisor's control pipe.
    let control: ControlPipe?

    /// The write end of a supervisor's control pipe; closing it kills the supervised tree.
    ///
    /// `@unchecked Sendable`: `fd` is guarded by `lock`, which the compiler cannot connect to it.
    final class ControlPipe: @unchecked Sendable {
        private let lock = NIOLock()
        private var fd: Int32

        init(fd: Int32) { self.fd = fd }

        func close() {
            let toClose = lock.withLock { () -> Int32 in
                defer { fd = -1 }
                return fd
            }
            if toClose >= 0 { _ = Glibc.close(toClose) }
        }

        /// One byte to the supervisor: it lets go of the connection it holds for the gateway.
        func notify() {
            var byte: UInt8 = 1
            lock.withLock { if fd >= 0 { _ = Glibc.write(fd, &byte, 1) } }
        }

        deinit { if fd >= 0 { _ = Glibc.close(fd) } }
    }

    /// The supervisor's argv[0]: it checks it, and it makes the gateway's own binary run as one.
    static let supervisorName = "portico-supervise"

    /// `portico-supervise` beside the running binary, else the running binary itself (a
    /// constructor in CPorticoSpawn then acts as the supervisor, at the cost of loading the
    /// Swift runtime on every spawn).
    static let supervisorPath: String = {
        let own = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? ""
        if let slash = own.lastIndex(of: "/") {
            let sibling = String(own[..<slash]) + "/" + supervisorName
            if access(sibling, X_OK) == 0 { return sibling }
        }
        return "/proc/self/exe"
    }()

    /// Asks the supervisor to report when `port` on 127.0.0.1 accepts a connection, with a
    /// `portico_ready_report` datagram on `socket` (see `WorkerReadinessReports`).
    public struct ReadinessReport {
        public var port: Int
        public var socket: Int32
    }

    /// What the spawner hands back: the process and the parent's ends of its pipes.
    public struct Spawned {
        public var process: ChildProcess
        /// Write end of the child's stdin (nil when stdin is /dev/null).
        public var stdin: Int32?
        public var stdout: Int32
        /// Nil when stderr goes into the stdout pipe.
        public var stderr: Int32?
    }

    /// Starts `command` in `directory` with exactly `environment`, under a supervisor.
    /// `command[0]` is looked up on `PATH` (from `environment`, else the gateway's) unless it
    /// contains a slash, in which case it is relative to `directory`. `stdinDescriptor`, when
    /// given, becomes the child's stdin as it is (a socket to it, say); the caller keeps and
    /// closes its own copy.
    public static func spawn(
        command: [String], directory: String, environment: [String: String], withStdin: Bool = false,
        stdinDescriptor: Int32? = nil, mergeStderr: Bool = false, memoryLimit: Int? = nil, openFilesLimit: Int? = nil,
        readiness: ReadinessReport? = nil
    ) throws -> Spawned {
        guard let program = command.first else { throw SpawnError.commandNotFound("") }
        // The child changes into `directory` before exec, so every path it is given is absolute.
        let directory = directory.hasPrefix("/") ? directory : Self.workingDirectory + "/" + directory
        guard let path = resolveRemembered(program, directory: directory,
                                           path: environment["PATH"] ?? WorkerProcess.inheritedEnvironment["PATH"]) else {
            throw SpawnError.commandNotFound(program)
        }

        var stdinPipe: [Int32] = [-1, -1]
        var stdoutPipe: [Int32] = [-1, -1]
        var stderrPipe: [Int32] = [-1, -1]
        // O_CLOEXEC on the parent's copies: another child spawned meanwhile must not inherit them,
        // or a worker's stdout would never reach end-of-file.
        if withStdin {
            let code = portico_pipe_cloexec(&stdinPipe)
            if code != 0 { throw SpawnError.pipe(code) }
        }
        var code = portico_pipe_cloexec(&stdoutPipe)
        guard code == 0 else { throw SpawnError.pipe(code) }
        if !mergeStderr {
            code = portico_pipe_cloexec(&stderrPipe)
            guard code == 0 else { throw SpawnError.pipe(code) }
        }

        var controlPipe: [Int32] = [-1, -1]
        code = portico_pipe_cloexec(&controlPipe)
        guard code == 0 else { throw SpawnError.pipe(code) }

        // The supervisor is this very binary (a constructor in CPorticoSpawn takes over when
        // argv[0] is `supervisorName`); the limits are its to apply, to the command alone.
        let supervisorArguments = [Self.supervisorName, String(memoryLimit ?? 0), String(openFilesLimit ?? 0),
                                   String(readiness?.port ?? 0), path]
        let argv = (supervisorArguments + command).map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        // Known to the reaper from the moment it exists: a supervisor whose command fails at
        // once may die before its spawner watches it, and must not be taken for an orphan.
        let outcome = ChildReaper.shared.spawning { () -> SupervisorSpawner.Outcome in
            argv.withUnsafeBufferPointer { argvBuffer in
                envp.withUnsafeBufferPointer { envpBuffer in
                    SupervisorSpawner.shared.spawn(
                        supervisor: Self.supervisorPath, argv: argvBuffer.baseAddress!, envp: envpBuffer.baseAddress!,
                        directory: directory, stdin: stdinDescriptor ?? stdinPipe[0], stdout: stdoutPipe[1],
                        stderr: mergeStderr ? stdoutPipe[1] : stderrPipe[1], control: controlPipe[0],
                        ready: readiness?.socket ?? -1)
                }
            }
        }
        let result = outcome.result
        let pid = outcome.pid
        // The child's ends belong to the child now.
        if withStdin { close(stdinPipe[0]) }
        close(stdoutPipe[1])
        if !mergeStderr { close(stderrPipe[1]) }
        close(controlPipe[0])
        guard result == 0 else {
            if withStdin { close(stdinPipe[1]) }
            close(stdoutPipe[0])
            if !mergeStderr { close(stderrPipe[0]) }
            close(controlPipe[1])
            throw SpawnError.failed(command: program, errno: result)
        }
        return Spawned(process: ChildProcess(pid: pid, control: ControlPipe(fd: controlPipe[1])),
                       stdin: withStdin ? stdinPipe[1] : nil, stdout: stdoutPipe[0], stderr: mergeStderr ? nil : stderrPipe[0])
    }

    /// Signals the whole process group: the command and whatever it started in its group. The
    /// supervisor ignores SIGTERM, so a graceful stop reaches the command only.
    public func signalGroup(_ signal: Int32) {
        _ = portico_kill_group(pid, signal)
    }

    /// Tells the supervisor that the gateway has its copy of the connection that found the
    /// worker ready (or will not take it): the supervisor closes its own.
    func releaseHeldConnection() {
        control?.notify()
    }

    /// Kills the command and everything it started, wherever it went (`setsid` included): the
    /// supervisor does it once its control pipe closes, then exits. Also releases the pipe of a
    /// child that has exited.
    public func killAll() {
        control?.close()
    }

    /// The gateway's working directory, which it never changes: read once, not on every spawn.
    static let workingDirectory = FileManager.default.currentDirectoryPath

    /// Programs found by `resolve`, by program, directory and search path: a worker's start
    /// looked its command up again each time (an `access` per folder of `PATH`, on the cold
    /// start's path), though a revision's command and folder never change. A program that has
    /// gone since is the exec's error then, as it would be a moment after a lookup.
    private static let resolved = NIOLockedValueBox<[String: String]>([:])

    static func resolveRemembered(_ program: String, directory: String, path: String?) -> String? {
        let key = program + "\u{0}" + directory + "\u{0}" + (path ?? "")
        if let found = resolved.withLockedValue({ $0[key] }) { return found }
        guard let found = resolve(program, directory: directory, path: path) else { return nil }
        resolved.withLockedValue { remembered in
            // Bounded: folders of old revisions are not looked up again.
            if remembered.count >= 1024 { remembered.removeAll() }
            remembered[key] = found
        }
        return found
    }

    static func resolve(_ program: String, directory: String, path: String?) -> String? {
        if program.contains("/") {
            let full = program.hasPrefix("/") ? program : directory + "/" + program
            return access(full, X_OK) == 0 ? full : nil
        }
        for folder in (path ?? "/usr/local/bin:/usr/bin:/bin").split(separator: ":") {
            let candidate = "\(folder)/\(program)"
            if access(candidate, X_OK) == 0 { return candidate }
        }
        return nil
    }
}

/// Reaps every child the gateway spawns, so none lingers as a zombie.
///
/// It waits on each registered pid only (never on -1), so it cannot steal the exit of a process
/// someone else in the gateway started. SIGCHLD wakes it; a slow poll covers a lost signal.
///
/// `@unchecked Sendable`: `watched` and `spawned` are guarded by `lock`; the fields marked
/// "reaper queue only" are touched only on `queue`, a serial queue; the compiler sees neither.
public final class ChildReaper: @unchecked Sendable {
    public static let shared = ChildReaper()

    private let lock = NIOLock()
    private var watched: [pid_t: @Sendable (ChildExit) -> Void] = [:]
    /// Children `ChildProcess.spawn` started and nobody has reaped yet: never orphans.
    private var spawned: Set<pid_t> = []
    /// The gateway's children when it became a subreaper (inherited across exec, or started
    /// before): not its to kill (reaper queue only).
    private var preexisting: Set<pid_t> = []
    /// Killed orphans, to reap once they are gone (reaper queue only).
    private var orphans: Set<pid_t> = []
    /// Orphans already dead at the last sweep: reaped at the next one if still unknown.
    private var deadStrangers: Set<pid_t> = []
    private var adoptsOrphans = false  // reaper queue only
    private let queue = DispatchQueue(label: "portico.child-reaper")
    private var signalSource: DispatchSourceSignal?
    private var timer: DispatchSourceTimer?

    private init() {
        queue.sync {
            let source = DispatchSource.makeSignalSource(signal: SIGCHLD, queue: queue)
            source.setEventHandler { [weak self] in self?.reap() }
            source.resume()
            signalSource = source
            let timer = DispatchSource.makeTimerSource(queue: queue)
            timer.schedule(deadline: .now() + .milliseconds(250), repeating: .milliseconds(250))
            timer.setEventHandler { [weak self] in self?.reap() }
            timer.resume()
            self.timer = timer
        }
    }

    /// Runs `spawn` (which returns its result and the new pid, 0 for none) with the reaper's
    /// lock held, so the sweep never sees the child before it is known.
    /// A spawner it had to start is known the same way, and watched (reaped) from then on.
    func spawning(_ spawn: () -> SupervisorSpawner.Outcome) -> SupervisorSpawner.Outcome {
        let outcome = lock.withLock {
            let outcome = spawn()
            if outcome.pid > 0 { spawned.insert(outcome.pid) }
            if let spawner = outcome.startedSpawner { spawned.insert(spawner) }
            // Watched from here on (the sweep must not take them for orphans), and reaped once
            // they end (they are ending).
            for child in outcome.lost {
                spawned.remove(child)
                watched[child] = { _ in }
            }
            return outcome
        }
        if let spawner = outcome.startedSpawner {
            // Its end shows at the next spawn, which starts another.
            watch(spawner) { _ in }
        }
        for child in outcome.lost { watch(child) { _ in } }
        return outcome
    }

    /// Has the spawner fork a spare supervisor for the next spawn, when it wants one
    /// (`SupervisorSpawner.prepareSpare`). On the reaper's queue, at each of its looks (every
    /// 250 ms, and at every exit of a child), so that nothing on a cold start's path wakes a
    /// thread for it; and never while the sweep runs, so the spare is known as spawned from
    /// the moment it exists, as a supervisor is.
    private func forkSpareIfWanted() {
        _ = spawning { SupervisorSpawner.shared.prepareSpare() }
    }

    /// Calls `onExit` (on the reaper's queue) once `pid` has exited and been reaped.
    ///
    /// A child that exited before this call raised its SIGCHLD while it was not watched yet, so
    /// it is looked for here, with one non-blocking `waitpid` on the caller's thread: handing
    /// that to the reaper's queue woke a thread of its own (and a sweep of `/proc`) on every
    /// cold start, on the core the new worker was starting on.
    public func watch(_ pid: pid_t, onExit: @escaping @Sendable (ChildExit) -> Void) {
        lock.withLock { watched[pid] = onExit }
        var status: Int32 = 0
        guard portico_try_reap(pid, &status) == 1 else { return }
        // Whoever reaps a pid first reports it; the queue's `reap` finds it gone.
        let callback = lock.withLock { () -> (@Sendable (ChildExit) -> Void)? in
            spawned.remove(pid)
            return watched.removeValue(forKey: pid)
        }
        let exit = Self.exit(status)
        queue.async { callback?(exit) }
    }

    static func exit(_ status: Int32) -> ChildExit {
        portico_signaled(status) != 0 ? .signaled(portico_term_signal(status)) : .exited(portico_exit_status(status))
    }

    /// Makes the gateway a child subreaper (`PR_SET_CHILD_SUBREAPER`), and kills and reaps any
    /// process re-parented to it. A worker's descendants are its supervisor's to kill; they
    /// reach the gateway only if the supervisor itself was killed from outside. For the
    /// gateway only: a process that runs other children of its own (a test runner) must not
    /// call it.
    public func adoptOrphans() {
        queue.async {
            guard !self.adoptsOrphans else { return }
            self.preexisting = Set(Self.children()).subtracting(self.lock.withLock { self.spawned })
            self.adoptsOrphans = portico_set_child_subreaper() == 0
        }
    }

    public var watchedCount: Int { lock.withLock { watched.count } }

    private func reap() {
        if adoptsOrphans { sweepOrphans() }
        let pids = lock.withLock { Array(watched.keys) }
        for pid in pids {
            var status: Int32 = 0
            guard portico_try_reap(pid, &status) == 1 else { continue }
            let exit = Self.exit(status)
            let callback = lock.withLock { () -> (@Sendable (ChildExit) -> Void)? in
                spawned.remove(pid)
                return watched.removeValue(forKey: pid)
            }
            callback?(exit)
            // A start that ended in an exit (a worker that failed, an exec-mode command) is over.
            SupervisorSpawner.shared.startIsOver()
        }
        forkSpareIfWanted()
    }
}

extension ChildReaper {
    /// Kills every child that is not one of the gateway's supervisors (an orphan re-parented
    /// here), then reaps the ones killed before.
    ///
    /// A supervisor is known by its pid, recorded under the reaper's lock as it is spawned; the
    /// gateway's children from before it became a subreaper are spared too.
    fileprivate func sweepOrphans() {
        for pid in orphans {
            var status: Int32 = 0
            if portico_try_reap(pid, &status) != 0 { orphans.remove(pid) }
        }
        var dead: Set<pid_t> = []
        for pid in Self.children()
        where !orphans.contains(pid) && !preexisting.contains(pid)
            && lock.withLock({ watched[pid] == nil && !spawned.contains(pid) }) {
            if Self.commandLine(of: String(pid)).isEmpty {
                // A zombie (or gone): an orphan that died on its own.
                var status: Int32 = 0
                if deadStrangers.contains(pid) { _ = portico_try_reap(pid, &status) } else { dead.insert(pid) }
                continue
            }
            kill(pid, SIGKILL)
            orphans.insert(pid)
        }
        deadStrangers = dead
    }

    private static func commandLine(of process: String) -> [UInt8] {
        readProcFile("/proc/\(process)/cmdline")
    }

    /// The gateway's children, from `/proc/self/task/*/children` (a child belongs to the thread
    /// that forked it, or to any thread once re-parented).
    static func children() -> [pid_t] {
        guard let tasks = try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task") else { return [] }
        var pids: [pid_t] = []
        for task in tasks {
            let text = readProcFile("/proc/self/task/\(task)/children")
            pids += text.split(separator: UInt8(ascii: " ")).compactMap { pid_t(String(decoding: $0, as: UTF8.self)
                .trimmingCharacters(in: .whitespacesAndNewlines)) }
        }
        return pids
    }

    /// A `/proc` file's bytes (empty if it cannot be read). Read with `read(2)` until its end:
    /// Foundation's `String(contentsOfFile:)` and `Data(contentsOf:)` leaked a buffer per read
    /// of a file whose reported size is 0, which every `/proc` file is; the sweep reads one per
    /// thread four times a second, and an idle gateway grew by megabytes a minute.
    private static func readProcFile(_ path: String) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return [] }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count <= 0 { break }
            bytes.append(contentsOf: chunk[0..<count])
        }
        return bytes
    }
}
