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

/// A child process in its own process group, which dies with the gateway (PR_SET_PDEATHSIG)
/// and is reaped by `ChildReaper`.
public struct ChildProcess: Sendable {
    public let pid: pid_t

    /// What the spawner hands back: the process and the parent's ends of its pipes.
    public struct Spawned {
        public var process: ChildProcess
        /// Write end of the child's stdin (nil when stdin is /dev/null).
        public var stdin: Int32?
        public var stdout: Int32
        /// Nil when stderr goes into the stdout pipe.
        public var stderr: Int32?
    }

    /// Starts `command` in `directory` with exactly `environment`.
    /// `command[0]` is looked up on `PATH` (from `environment`, else the gateway's) unless it
    /// contains a slash, in which case it is relative to `directory`.
    public static func spawn(
        command: [String], directory: String, environment: [String: String], withStdin: Bool = false,
        mergeStderr: Bool = false, memoryLimit: Int? = nil, openFilesLimit: Int? = nil
    ) throws -> Spawned {
        guard let program = command.first else { throw SpawnError.commandNotFound("") }
        // The child changes into `directory` before exec, so every path it is given is absolute.
        let directory = directory.hasPrefix("/") ? directory : FileManager.default.currentDirectoryPath + "/" + directory
        guard let path = resolve(program, directory: directory, path: environment["PATH"] ?? ProcessInfo.processInfo.environment["PATH"]) else {
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

        let argv = command.map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var pid: pid_t = 0
        let result = argv.withUnsafeBufferPointer { argvBuffer in
            envp.withUnsafeBufferPointer { envpBuffer in
                portico_spawn(path, argvBuffer.baseAddress, envpBuffer.baseAddress, directory,
                              stdinPipe[0], stdoutPipe[1], mergeStderr ? stdoutPipe[1] : stderrPipe[1],
                              Int64(memoryLimit ?? 0), Int64(openFilesLimit ?? 0), &pid)
            }
        }
        // The child's ends belong to the child now.
        if withStdin { close(stdinPipe[0]) }
        close(stdoutPipe[1])
        if !mergeStderr { close(stderrPipe[1]) }
        guard result == 0 else {
            if withStdin { close(stdinPipe[1]) }
            close(stdoutPipe[0])
            if !mergeStderr { close(stderrPipe[0]) }
            throw SpawnError.failed(command: program, errno: result)
        }
        return Spawned(process: ChildProcess(pid: pid), stdin: withStdin ? stdinPipe[1] : nil,
                       stdout: stdoutPipe[0], stderr: mergeStderr ? nil : stderrPipe[0])
    }

    /// Signals the whole process group: the worker and whatever it started.
    public func signalGroup(_ signal: Int32) {
        _ = portico_kill_group(pid, signal)
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
public final class ChildReaper: @unchecked Sendable {
    public static let shared = ChildReaper()

    private let lock = NIOLock()
    private var watched: [pid_t: @Sendable (ChildExit) -> Void] = [:]
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

    /// Calls `onExit` (on the reaper's queue) once `pid` has exited and been reaped.
    public func watch(_ pid: pid_t, onExit: @escaping @Sendable (ChildExit) -> Void) {
        lock.withLock { watched[pid] = onExit }
        queue.async { self.reap() }
    }

    public var watchedCount: Int { lock.withLock { watched.count } }

    private func reap() {
        let pids = lock.withLock { Array(watched.keys) }
        for pid in pids {
            var status: Int32 = 0
            guard portico_try_reap(pid, &status) == 1 else { continue }
            let exit: ChildExit = portico_signaled(status) != 0
                ? .signaled(portico_term_signal(status)) : .exited(portico_exit_status(status))
            let callback = lock.withLock { watched.removeValue(forKey: pid) }
            callback?(exit)
        }
    }
}
