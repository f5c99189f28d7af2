import CPorticoSpawn
import NIOConcurrencyHelpers

#if canImport(Glibc)
import Glibc
#endif

/// The spawner process (`Sources/CPorticoSpawn/spawner.c`): started once, it forks each
/// supervisor, where exec'ing one per worker cost a third of a native cold start.
///
/// If it cannot be started, or dies, the spawn it was asked for goes the usual way (vfork and
/// exec of the supervisor) and the next one starts a new spawner; after `maximumRestarts`
/// failures in a row the gateway stops trying.
///
/// `@unchecked Sendable`: `state` is guarded by `lock`, which the compiler cannot connect to it.
final class SupervisorSpawner: @unchecked Sendable {
    static let shared = SupervisorSpawner()
    static let maximumRestarts = 3

    private let lock = NIOLock()
    private var state: (socket: Int32, pid: pid_t)?
    private var failures = 0

    /// What a spawn did: its result (0 or errno), the supervisor's pid, and the pid of a
    /// spawner it had to start (for the reaper to watch).
    struct Outcome {
        var result: Int32
        var pid: pid_t
        var startedSpawner: pid_t?
    }

    /// Spawns the supervisor `argv` (argv[0] its name) through the spawner, or through
    /// `portico_spawn` when the spawner is not available.
    func spawn(supervisor path: String, argv: UnsafePointer<UnsafeMutablePointer<CChar>?>,
               envp: UnsafePointer<UnsafeMutablePointer<CChar>?>, directory: String,
               stdin: Int32, stdout: Int32, stderr: Int32, control: Int32, ready: Int32) -> Outcome {
        lock.withLock {
            var startedSpawner: pid_t?
            if state == nil, failures < Self.maximumRestarts {
                var socket: Int32 = -1
                var pid: pid_t = 0
                if portico_spawner_start(path, STDERR_FILENO, &socket, &pid) == 0 {
                    state = (socket, pid)
                    startedSpawner = pid
                } else {
                    failures += 1
                }
            }
            var pid: pid_t = 0
            if let spawner = state {
                let result = portico_spawner_spawn(spawner.socket, argv, envp, directory, stdin, stdout, stderr,
                                                   control, ready, &pid)
                if result >= 0 {
                    failures = 0
                    return Outcome(result: result, pid: result == 0 ? pid : 0, startedSpawner: startedSpawner)
                }
                // Gone (or the request too large for it): this spawn goes the usual way.
                close(spawner.socket)
                state = nil
                failures += 1
            }
            let result = portico_spawn(path, argv, envp, directory, stdin, stdout, stderr, 0, 0, control, ready, &pid)
            return Outcome(result: result, pid: result == 0 ? pid : 0, startedSpawner: startedSpawner)
        }
    }
}
