import CPorticoSpawn
import Dispatch
import NIOConcurrencyHelpers
import NIOCore
import Synchronization

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
/// Once a start is over, it forks a spare supervisor ahead of time (`prepareSpare`), which the
/// next spawn uses, so that not even the fork is on a cold start's path.
///
/// `@unchecked Sendable`: `state` is guarded by `lock`, which the compiler cannot connect to it.
final class SupervisorSpawner: @unchecked Sendable {
    static let shared = SupervisorSpawner()
    static let maximumRestarts = 3

    private let lock = NIOLock()
    private var state: (socket: Int32, pid: pid_t)?
    private var failures = 0
    /// The spawner's spare supervisor, if it has one.
    private var spare: pid_t?
    /// When the last spawn was asked for (`DispatchTime` nanoseconds).
    private var lastSpawn: UInt64 = 0
    /// Whether a start has ended (its worker ready, or a child gone) since the last spawn: an
    /// atomic, so that an event loop saying so never waits for a fork under way.
    private let startOver = Atomic<Bool>(false)

    /// How long spawns must have been quiet before a spare is forked, and how long after the
    /// last spawn it is forked even though no start said it was over (a worker slow to start,
    /// an exec-mode command that runs long).
    static let spareQuiet = TimeAmount.milliseconds(20)
    static let spareAnyway = TimeAmount.seconds(1)

    /// What a spawn did: its result (0 or errno), the supervisor's pid (or the spare's, for
    /// `prepareSpare`), the pid of a spawner it had to start (for the reaper to watch), and
    /// children of the gateway's that are gone or going unknown to it (spares the spawner
    /// lost, a spawner's spare once the spawner is gone), for the reaper to reap.
    struct Outcome {
        var result: Int32
        var pid: pid_t
        var startedSpawner: pid_t?
        var lost: [pid_t] = []
    }

    /// Spawns the supervisor `argv` (argv[0] its name) through the spawner, or through
    /// `portico_spawn` when the spawner is not available.
    func spawn(supervisor path: String, argv: UnsafePointer<UnsafeMutablePointer<CChar>?>,
               envp: UnsafePointer<UnsafeMutablePointer<CChar>?>, directory: String,
               stdin: Int32, stdout: Int32, stderr: Int32, control: Int32, ready: Int32) -> Outcome {
        lock.withLock {
            lastSpawn = DispatchTime.now().uptimeNanoseconds
            startOver.store(false, ordering: .relaxed)
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
            var lost: [pid_t] = []
            if let spawner = state {
                let (result, lostChildren) = Self.naming(lost: { lostOut in
                    portico_spawner_spawn(spawner.socket, argv, envp, directory, stdin, stdout, stderr,
                                          control, ready, &pid, lostOut)
                })
                if result >= 0 {
                    failures = 0
                    lost = lostChildren
                    // A spawn takes the spare if there is one, or finds it lost; one that failed
                    // before (a missing directory) leaves it to the next.
                    if (result == 0 && pid == spare) || lost.contains(where: { $0 == spare }) { spare = nil }
                    return Outcome(result: result, pid: result == 0 ? pid : 0, startedSpawner: startedSpawner, lost: lost)
                }
                // Gone (or the request too large for it): this spawn goes the usual way.
                lost = dropSpawner()
                failures += 1
            }
            let result = portico_spawn(path, argv, envp, directory, stdin, stdout, stderr, 0, 0, control, ready, &pid)
            return Outcome(result: result, pid: result == 0 ? pid : 0, startedSpawner: startedSpawner, lost: lost)
        }
    }

    /// Says that a start is over: a worker is ready (called on its event loop), or a child has
    /// exited.
    func startIsOver() {
        startOver.store(true, ordering: .relaxed)
    }

    /// Has the spawner fork a spare if it has none (or its spare has ended), spawns have been
    /// quiet for `spareQuiet`, and the last start is over (or `spareAnyway` has passed): so
    /// that the fork never competes with a worker that is starting. The outcome's pid is the
    /// new spare's (0 if none was made).
    func prepareSpare() -> Outcome {
        lock.withLock {
            var outcome = Outcome(result: 0, pid: 0)
            let quiet = DispatchTime.now().uptimeNanoseconds - lastSpawn
            guard let spawner = state, spare.map({ portico_has_exited($0) != 0 }) ?? true,
                  quiet >= UInt64(Self.spareQuiet.nanoseconds),
                  startOver.load(ordering: .relaxed) || quiet >= UInt64(Self.spareAnyway.nanoseconds) else { return outcome }
            var pid: pid_t = 0
            // A spare that has ended is named among the lost, and replaced.
            let (result, lostChildren) = Self.naming(lost: { lostOut in
                portico_spawner_prefork(spawner.socket, &pid, lostOut)
            })
            guard result >= 0 else {
                outcome.lost = dropSpawner()
                return outcome
            }
            outcome.lost = lostChildren
            if outcome.lost.contains(where: { $0 == spare }) { spare = nil }
            outcome.result = result
            if result == 0 {
                spare = pid
                outcome.pid = pid
            }
            return outcome
        }
    }

    /// Runs a request to the spawner that names up to two lost children in `lost_out[2]`;
    /// returns its result and those children.
    private static func naming(lost request: (UnsafeMutablePointer<pid_t>) -> Int32) -> (Int32, [pid_t]) {
        var lostChildren: (pid_t, pid_t) = (0, 0)
        let result = withUnsafeMutableBytes(of: &lostChildren) { request($0.baseAddress!.assumingMemoryBound(to: pid_t.self)) }
        return (result, [lostChildren.0, lostChildren.1].filter { $0 > 0 })
    }

    /// Forgets a spawner that is gone or no longer usable (lock held); returns its spare, killed:
    /// an idle one would end once it saw the spawner's end of its socket close, but one the
    /// spawner had handed a request to before it died is a supervisor now, and its request is
    /// spawned again the usual way. (Its pid cannot be reused before the gateway reaps it.)
    private func dropSpawner() -> [pid_t] {
        if let spawner = state { close(spawner.socket) }
        state = nil
        guard let dropped = spare else { return [] }
        spare = nil
        kill(dropped, SIGKILL)
        return [dropped]
    }
}
