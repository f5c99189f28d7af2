import PorticoCore
import XCTest

/// Drives the scaler with seeded random event sequences through a simulated shell that performs
/// every action, and checks the guarantees after every single event.
final class FunctionScalerPropertyTests: XCTestCase {
    private typealias Scaler = FunctionScaler
    private static let ms: UInt64 = 1_000_000

    /// 32 requests, concurrency 1, maxWorkers 4: a burst, then arrivals, readies and finishes in a
    /// random (seeded) order.
    func testBurstOf32NeverRunsMoreThanFourWorkersOrOverloadsOne() {
        for seed in UInt64(1)...50 {
            var random = ScriptedGenerator(state: seed)
            var shell = SimulatedShell(configuration: .init(concurrency: 1, maxWorkers: 4, queueLimit: 64), seed: seed)
            var next: UInt64 = 1
            for _ in 0..<8 {   // the burst: enough to need every worker
                shell.arrive(Scaler.RequestID(next)); next += 1
            }
            while next <= 32 || !shell.startingWorkers.isEmpty || !shell.requestsInFlight.isEmpty {
                switch Int.random(in: 0..<3, using: &random) {
                case 0 where next <= 32:
                    shell.arrive(Scaler.RequestID(next)); next += 1
                case 1 where !shell.startingWorkers.isEmpty:
                    shell.ready(shell.startingWorkers.randomElement(using: &random)!)
                case 2 where !shell.requestsInFlight.isEmpty:
                    shell.finish(shell.requestsInFlight.keys.randomElement(using: &random)!)
                default:
                    continue
                }
            }
            XCTAssertEqual(shell.starts, 4, "seed \(seed): exactly one start per allowed worker")
            XCTAssertEqual(shell.finished.count, 32, "seed \(seed): every request was served")
            XCTAssertEqual(shell.scaler.queueLength, 0)
            XCTAssertEqual(shell.maxLiveSeen, 4)
        }
    }

    /// Everything that can happen, at random: arrivals, readies, finishes, crashes (at startup and
    /// while serving), every kind of timer, cancellations; then a quiet period and a drain.
    func testRandomLivesKeepEveryGuarantee() {
        var seen: Set<String> = []
        for seed in UInt64(1)...300 {
            var random = ScriptedGenerator(state: seed &* 7919)
            let maxWorkers = Int.random(in: 1...4, using: &random)
            let configuration = Scaler.Configuration(
                concurrency: Int.random(in: 0...3, using: &random),
                minWorkers: Int.random(in: 0...min(2, maxWorkers), using: &random),
                maxWorkers: maxWorkers,
                queueLimit: Int.random(in: 1...12, using: &random),
                idleTimeout: UInt64.random(in: 0...200, using: &random) * Self.ms,
                startupTimeout: UInt64.random(in: 50...500, using: &random) * Self.ms,
                crashBackoff: (10 * Self.ms, 160 * Self.ms)
            )
            var shell = SimulatedShell(configuration: configuration, seed: seed)
            shell.perform(shell.scaler.start(now: shell.now))
            var next: UInt64 = 1
            for _ in 0..<400 {
                shell.now += UInt64.random(in: 0...20, using: &random) * Self.ms
                switch Int.random(in: 0..<10, using: &random) {
                case 0, 1:
                    shell.arrive(Scaler.RequestID(next)); next += 1
                case 2 where !shell.startingWorkers.isEmpty:
                    shell.ready(shell.startingWorkers.randomElement(using: &random)!)
                case 3 where !shell.requestsInFlight.isEmpty, 4 where !shell.requestsInFlight.isEmpty:
                    shell.finish(shell.requestsInFlight.keys.randomElement(using: &random)!)
                case 5 where !shell.liveWorkers.isEmpty:
                    shell.crash(shell.liveWorkers.randomElement(using: &random)!)
                case 6 where !shell.toldToStop.isEmpty:
                    shell.exit(shell.toldToStop.randomElement(using: &random)!)
                case 7:
                    shell.fireDueTimer(using: &random)
                case 8 where shell.scaler.queueLength > 0:
                    shell.cancel(shell.scaler.queuedRequests.randomElement(using: &random)!)
                default:
                    break
                }
            }
            if seed % 2 == 0 {
                // Quiet period: processes come up, requests end, timers fire; no more crashes.
                shell.settle()
                XCTAssertEqual(shell.scaler.queueLength, 0, "seed \(seed): nobody waits forever")
                XCTAssertEqual(shell.unresolved(upTo: next), [], "seed \(seed): every request got an answer")
                // Every idle check has fired by now: what is left is exactly minWorkers, all ready.
                XCTAssertEqual(shell.scaler.readyWorkerCount, configuration.minWorkers, "seed \(seed): scaled down to min")
                XCTAssertEqual(shell.scaler.liveWorkerCount, configuration.minWorkers, "seed \(seed)")
            } else {
                // Redeploy in the middle of a burst.
                for _ in 0..<Int.random(in: 0...8, using: &random) {
                    shell.arrive(Scaler.RequestID(next)); next += 1
                }
            }
            shell.perform(shell.scaler.drain())
            XCTAssertEqual(shell.scaler.queueLength, 0, "seed \(seed): waiting requests went to the next revision")
            shell.arrive(Scaler.RequestID(next)); next += 1
            shell.settle()
            XCTAssertEqual(shell.unresolved(upTo: next), [], "seed \(seed): every request got an answer")
            XCTAssertTrue(shell.scaler.isFinished, "seed \(seed): a drained revision ends")
            XCTAssertTrue(shell.liveWorkers.isEmpty, "seed \(seed): no process is left behind")
            seen.formUnion(shell.actionKinds)
        }
        // The sequences must reach every path, or the guarantees above were checked on too little.
        XCTAssertEqual(seen, [
            "dispatch", "reject.queueFull", "reject.draining", "fail", "startWorker", "scheduleStartupTimeout",
            "scheduleIdleCheck", "stopWorker", "killWorker", "scheduleRetry", "requeueElsewhere", "crashLooping",
        ])
    }
}

/// A fake shell: it performs the scaler's actions on pretend processes and timers, and fails the
/// test as soon as an action breaks a guarantee.
private struct SimulatedShell {
    typealias Scaler = FunctionScaler

    var scaler: Scaler
    let configuration: Scaler.Configuration
    let seed: UInt64
    var now: UInt64 = 0

    /// Spawned and not exited, in any state.
    var liveWorkers: Set<Scaler.WorkerID> = []
    /// Spawned, not ready yet, and not told to stop: these may report ready.
    var startingWorkers: Set<Scaler.WorkerID> = []
    /// Told to stop or killed and not exited yet.
    var toldToStop: Set<Scaler.WorkerID> = []
    var requestsInFlight: [Scaler.RequestID: Scaler.WorkerID] = [:]
    var idleTimers: [(worker: Scaler.WorkerID, due: UInt64)] = []
    var startupTimers: [(worker: Scaler.WorkerID, due: UInt64)] = []
    var retryTimers: [UInt64] = []

    var answered: Set<Scaler.RequestID> = []   // rejected, failed, requeued, cancelled, or lost in a crash
    var dispatched: Set<Scaler.RequestID> = []
    var finished: Set<Scaler.RequestID> = []
    var starts = 0
    var maxLiveSeen = 0
    var everStarted: Set<Scaler.WorkerID> = []
    var actionKinds: Set<String> = []

    init(configuration: Scaler.Configuration, seed: UInt64) {
        self.scaler = Scaler(configuration: configuration)
        self.configuration = configuration
        self.seed = seed
    }

    mutating func arrive(_ request: Scaler.RequestID) {
        perform(scaler.requestArrived(request, now: now))
    }

    mutating func ready(_ worker: Scaler.WorkerID) {
        startingWorkers.remove(worker)
        perform(scaler.workerReady(worker, now: now))
    }

    mutating func finish(_ request: Scaler.RequestID) {
        let worker = requestsInFlight.removeValue(forKey: request)!
        finished.insert(request)
        perform(scaler.requestFinished(request, worker: worker, now: now))
    }

    mutating func cancel(_ request: Scaler.RequestID) {
        scaler.requestCancelled(request)
        answered.insert(request)
        check("after cancelling \(request)")
        XCTAssertFalse(scaler.queuedRequests.contains(request), "seed \(seed)")
    }

    mutating func crash(_ worker: Scaler.WorkerID) {
        exit(worker)
    }

    mutating func exit(_ worker: Scaler.WorkerID) {
        liveWorkers.remove(worker)
        startingWorkers.remove(worker)
        toldToStop.remove(worker)
        // The proxy answers 502 for the requests the process took down with it.
        for (request, owner) in requestsInFlight where owner == worker {
            requestsInFlight[request] = nil
            answered.insert(request)
        }
        perform(scaler.workerExited(worker, now: now))
    }

    /// Fires one of the timers that are due, if any.
    mutating func fireDueTimer<G: RandomNumberGenerator>(using random: inout G) {
        var due: [(inout SimulatedShell) -> Void] = []
        for i in idleTimers.indices where idleTimers[i].due <= now { due.append { $0.fireIdle(at: i) } }
        for i in startupTimers.indices where startupTimers[i].due <= now { due.append { $0.fireStartup(at: i) } }
        for i in retryTimers.indices where retryTimers[i] <= now { due.append { $0.fireRetry(at: i) } }
        guard let fire = due.randomElement(using: &random) else { return }
        fire(&self)
    }

    /// Lets everything in motion come to rest: workers come up, requests end, stopped processes
    /// exit, timers fire in time order. No crashes happen here.
    mutating func settle() {
        for _ in 0..<10_000 {
            if let worker = startingWorkers.min() {
                ready(worker)
            } else if let request = requestsInFlight.keys.min(by: { $0.rawValue < $1.rawValue }) {
                finish(request)
            } else if let worker = toldToStop.min() {
                exit(worker)
            } else if !fireEarliestTimer() {
                return
            }
        }
        XCTFail("seed \(seed): the scaler never settled")
    }

    /// Moves the clock to the earliest timer and fires it; false when no timer is pending.
    mutating func fireEarliestTimer() -> Bool {
        let idle = idleTimers.indices.min { idleTimers[$0].due < idleTimers[$1].due }
        let startup = startupTimers.indices.min { startupTimers[$0].due < startupTimers[$1].due }
        let retry = retryTimers.indices.min { retryTimers[$0] < retryTimers[$1] }
        var best: (due: UInt64, fire: (inout SimulatedShell) -> Void)?
        if let i = idle, best == nil || idleTimers[i].due < best!.due {
            best = (idleTimers[i].due, { $0.fireIdle(at: i) })
        }
        if let i = startup, best == nil || startupTimers[i].due < best!.due {
            best = (startupTimers[i].due, { $0.fireStartup(at: i) })
        }
        if let i = retry, best == nil || retryTimers[i] < best!.due {
            best = (retryTimers[i], { $0.fireRetry(at: i) })
        }
        guard let (due, fire) = best else { return false }
        now = max(now, due)
        fire(&self)
        return true
    }

    mutating func fireIdle(at index: Int) {
        let timer = idleTimers.remove(at: index)
        perform(scaler.idleCheckFired(timer.worker, now: now))
    }

    mutating func fireStartup(at index: Int) {
        let timer = startupTimers.remove(at: index)
        perform(scaler.startupTimeoutFired(timer.worker, now: now))
    }

    mutating func fireRetry(at index: Int) {
        retryTimers.remove(at: index)
        perform(scaler.retryFired(now: now))
    }

    /// Which of the requests 1..<next never got an answer.
    func unresolved(upTo next: UInt64) -> [Scaler.RequestID] {
        (1..<next).map(Scaler.RequestID.init).filter { !answered.contains($0) && !finished.contains($0) }
    }

    mutating func perform(_ actions: Scaler.Actions) {
        for action in actions {
            actionKinds.insert(Self.kind(of: action))
            switch action {
            case .dispatch(let request, let worker):
                XCTAssertTrue(liveWorkers.contains(worker), "seed \(seed): \(request) sent to dead \(worker)")
                XCTAssertFalse(toldToStop.contains(worker), "seed \(seed): \(request) sent to stopping \(worker)")
                XCTAssertEqual(scaler.worker(worker)?.state, .ready, "seed \(seed)")
                XCTAssertFalse(dispatched.contains(request), "seed \(seed): \(request) dispatched twice")
                XCTAssertFalse(answered.contains(request), "seed \(seed): \(request) already answered")
                dispatched.insert(request)
                requestsInFlight[request] = worker
                if configuration.concurrency > 0 {
                    let load = requestsInFlight.values.filter { $0 == worker }.count
                    XCTAssertLessThanOrEqual(load, configuration.concurrency, "seed \(seed): \(worker) overloaded")
                }
            case .reject(let request, _), .fail(let request, _):
                XCTAssertFalse(dispatched.contains(request) || answered.contains(request), "seed \(seed)")
                answered.insert(request)
            case .requeueElsewhere(let requests):
                for request in requests {
                    XCTAssertFalse(dispatched.contains(request) || answered.contains(request), "seed \(seed)")
                    answered.insert(request)
                }
            case .startWorker(let worker):
                XCTAssertFalse(everStarted.contains(worker), "seed \(seed): \(worker) reused")
                XCTAssertFalse(scaler.isDraining, "seed \(seed): start while draining")
                everStarted.insert(worker)
                liveWorkers.insert(worker)
                startingWorkers.insert(worker)
                starts += 1
            case .scheduleStartupTimeout(let worker, let after):
                startupTimers.append((worker, now + after))
            case .scheduleIdleCheck(let worker, let after):
                idleTimers.append((worker, now + after))
            case .stopWorker(let worker), .killWorker(let worker):
                XCTAssertTrue(liveWorkers.contains(worker), "seed \(seed): stop of dead \(worker)")
                XCTAssertFalse(requestsInFlight.values.contains(worker), "seed \(seed): \(worker) stopped while busy")
                toldToStop.insert(worker)
                startingWorkers.remove(worker)
            case .replaceFailedWorker(let worker):
                // Killed with the request that found it unreachable still to report finished.
                XCTAssertTrue(liveWorkers.contains(worker), "seed \(seed): kill of dead \(worker)")
                toldToStop.insert(worker)
            case .scheduleRetry(let after):
                retryTimers.append(now + after)
            case .crashLooping(let failures):
                XCTAssertGreaterThanOrEqual(failures, 3, "seed \(seed)")
                XCTAssertEqual(failures, scaler.consecutiveStartFailures, "seed \(seed)")
            }
        }
        check("after \(actions)")
    }

    static func kind(of action: Scaler.Action) -> String {
        switch action {
        case .dispatch: return "dispatch"
        case .reject(_, .queueFull): return "reject.queueFull"
        case .reject(_, .draining): return "reject.draining"
        case .fail: return "fail"
        case .startWorker: return "startWorker"
        case .scheduleStartupTimeout: return "scheduleStartupTimeout"
        case .scheduleIdleCheck: return "scheduleIdleCheck"
        case .stopWorker: return "stopWorker"
        case .killWorker: return "killWorker"
        case .replaceFailedWorker: return "replaceFailedWorker"
        case .scheduleRetry: return "scheduleRetry"
        case .requeueElsewhere: return "requeueElsewhere"
        case .crashLooping: return "crashLooping"
        }
    }

    mutating func check(_ context: @autoclosure () -> String) {
        maxLiveSeen = max(maxLiveSeen, liveWorkers.count)
        XCTAssertLessThanOrEqual(liveWorkers.count, configuration.maxWorkers, "seed \(seed): too many processes \(context())")
        XCTAssertLessThanOrEqual(scaler.liveWorkerCount, configuration.maxWorkers, "seed \(seed) \(context())")
        XCTAssertEqual(scaler.liveWorkerCount, liveWorkers.count, "seed \(seed): machine and shell disagree \(context())")
        // Beyond queueLimit, only what the workers on their way will take waits.
        XCTAssertLessThanOrEqual(scaler.queueLength, configuration.queueLimit + configuration.concurrency * configuration.maxWorkers,
                                 "seed \(seed) \(context())")
        for worker in scaler.workers {
            let load = requestsInFlight.values.filter { $0 == worker.id }.count
            XCTAssertEqual(worker.inFlight, load, "seed \(seed): in-flight count of \(worker.id) \(context())")
        }
    }
}
