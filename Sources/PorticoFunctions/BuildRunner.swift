import Dispatch
import Foundation
import Logging
import NIOConcurrencyHelpers
import PorticoConfig

#if canImport(Glibc)
import Glibc
#endif

/// Runs a function's `build` command to completion, logging its output, within a time limit.
enum BuildRunner {
    /// After the timeout's SIGTERM, how long a build may take to exit before everything it
    /// started is killed.
    static let killGrace: DispatchTimeInterval = .seconds(5)

    /// Returns nil on success, or why it failed. Blocks the calling (registry) queue.
    static func run(_ command: [String], in directory: String, function: String, timeout: ConfigDuration,
                    logger: Logger) -> String? {
        let environment = WorkerProcess.inheritedEnvironment
        let spawned: ChildProcess.Spawned
        do {
            // One pipe for both streams: reading two pipes in turn could deadlock on a full one.
            spawned = try ChildProcess.spawn(command: command, directory: directory, environment: environment, mergeStderr: true)
        } catch {
            return "build: \(error)"
        }
        let process = spawned.process
        let exited = DispatchSemaphore(value: 0)
        let outcome = NIOLockedValueBox<ChildExit?>(nil)
        let timedOut = NIOLockedValueBox(false)
        ChildReaper.shared.watch(process.pid) { exit in
            outcome.withLockedValue { $0 = exit }
            exited.signal()
        }
        // SIGTERM to the build's group at the deadline, then SIGKILL to all it started. Either
        // closes the output pipe (the supervisor kills every holder), so the read below ends.
        let timers = DispatchQueue(label: "portico.build-timeout")
        let terminate = DispatchWorkItem {
            guard outcome.withLockedValue({ $0 == nil }) else { return }
            timedOut.withLockedValue { $0 = true }
            process.signalGroup(SIGTERM)
        }
        let kill = DispatchWorkItem {
            guard outcome.withLockedValue({ $0 == nil }) else { return }
            process.killAll()
        }
        let deadline = DispatchTime.now() + .nanoseconds(Int(clamping: timeout.nanoseconds))
        timers.asyncAfter(deadline: deadline, execute: terminate)
        timers.asyncAfter(deadline: deadline + killGrace, execute: kill)
        let output = readAll(spawned.stdout)
        // A blocking wait, on the registry's dispatch queue (never an async context or an
        // event loop): the build is the only thing that queue does meanwhile.
        exited.wait()
        terminate.cancel()
        kill.cancel()
        process.killAll()
        for line in output.split(separator: "\n") {
            logger.info("\(function) build: \(line)")
        }
        let exit = outcome.withLockedValue { $0 }
        if timedOut.withLockedValue({ $0 }) {
            return "build \(command.joined(separator: " ")) timed out after \(timeout) and was stopped (\(exit?.description ?? "?"))"
        }
        guard exit != .exited(0) else { return nil }
        return "build \(command.joined(separator: " ")) failed (\(exit?.description ?? "?"))" + tail(of: output)
    }

    /// The end of a failed build's output, for the failure `/functions`, `portico check` and
    /// `portico deploy` show: the compiler's error is usually on the last lines.
    static func tail(of output: String, lines: Int = 20, characters: Int = 2000) -> String {
        let kept = output.split(separator: "\n").suffix(lines).joined(separator: "\n")
        guard !kept.isEmpty else { return "" }
        return ":\n" + (kept.count > characters ? "…" + kept.suffix(characters) : kept)
    }

    private static func readAll(_ fd: Int32) -> String {
        let handle = FileHandle(fileDescriptor: fd, closeOnDealloc: true)
        return String(decoding: handle.readDataToEndOfFile(), as: UTF8.self)
    }
}
