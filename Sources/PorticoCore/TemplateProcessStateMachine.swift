/// The life of one revision's template process: the process that imports a function's handler
/// once and forks every worker from itself (`runtime: python`).
///
/// The template is not a worker: the `FunctionScaler` never sees it. The scaler asks for a
/// worker; this machine says when that worker can be forked (the template is up), when it
/// cannot (the template failed), and when the template itself starts, stops and restarts.
/// Workers are named by their scaler id.
public struct TemplateProcessStateMachine: Sendable {
    public typealias WorkerID = UInt64

    public struct Configuration: Sendable, Equatable {
        /// Keep the template while no worker runs (`idleTemplate`); otherwise it stops with
        /// the last worker and starts again for the next.
        public var keepWhileIdle: Bool
        /// The first wait before a crashed template is started again; it doubles per failure
        /// in a row, up to `maximumRestartDelay`.
        public var restartDelay: UInt64
        public var maximumRestartDelay: UInt64

        public init(keepWhileIdle: Bool, restartDelay: UInt64 = 100_000_000, maximumRestartDelay: UInt64 = 30_000_000_000) {
            self.keepWhileIdle = keepWhileIdle
            self.restartDelay = restartDelay
            self.maximumRestartDelay = maximumRestartDelay
        }
    }

    public enum Phase: Sendable, Equatable {
        /// No process, and none needed yet.
        case stopped
        /// Spawned; its handler is being imported.
        case starting
        /// Waiting for fork requests.
        case ready
        /// Crashed; started again when the delay has passed.
        case waitingToRestart
        /// Asked to exit (idle, or the revision is done); its exit is still to come.
        case stopping
        /// The revision is done with it for good.
        case finished
    }

    public enum Action: Sendable, Equatable {
        /// Start the template process.
        case spawn
        /// Ask the (ready) template to fork this worker.
        case fork(WorkerID)
        /// This worker will not be forked: to the scaler, a worker that exited before it was ready.
        case workerFailed(WorkerID, reason: String)
        /// A forked worker died with its template (the template cannot report its exit any more).
        case workerLost(WorkerID)
        case scheduleRestart(after: UInt64)
        /// Ask the template to exit (it takes its workers with it; by then there are none).
        case stop
    }

    public let configuration: Configuration
    public private(set) var phase: Phase = .stopped
    /// Why the template last failed (an import's traceback, say), for the admin API.
    public private(set) var lastFailure: String?
    /// Crashes in a row; a successful fork resets it.
    public private(set) var failures = 0
    private var queued: [WorkerID] = []
    private var forking: Set<WorkerID> = []
    private var live: Set<WorkerID> = []
    private var failureReason: String?
    private var finishing = false

    public init(configuration: Configuration) {
        self.configuration = configuration
    }

    /// Workers forked and not yet reported gone.
    public var liveWorkers: Set<WorkerID> { live }

    /// The revision is deployed: an `idleTemplate` starts now, so the first cold start only forks.
    public mutating func deployed() -> [Action] {
        guard configuration.keepWhileIdle, phase == .stopped else { return [] }
        phase = .starting
        return [.spawn]
    }

    /// The scaler starts a worker.
    public mutating func workerNeeded(_ worker: WorkerID) -> [Action] {
        switch phase {
        case .ready:
            forking.insert(worker)
            return [.fork(worker)]
        case .stopped:
            queued.append(worker)
            phase = .starting
            return [.spawn]
        case .starting, .waitingToRestart, .stopping:
            queued.append(worker)
            return []
        case .finished:
            return [.workerFailed(worker, reason: "the revision is stopping")]
        }
    }

    /// The scaler gave up on a worker before it was forked (its startup timed out).
    public mutating func workerCancelled(_ worker: WorkerID) -> [Action] {
        queued.removeAll { $0 == worker }
        return idleStop()
    }

    /// The template imported its handler and waits for fork requests.
    public mutating func templateReady() -> [Action] {
        guard phase == .starting else { return [] }
        phase = .ready
        let waiting = queued
        queued.removeAll()
        forking.formUnion(waiting)
        return waiting.map { .fork($0) } + idleStop()
    }

    /// The template said why it is about to exit (an import that failed).
    public mutating func templateReportedFailure(_ reason: String) {
        failureReason = reason
    }

    public mutating func forked(_ worker: WorkerID) -> [Action] {
        guard forking.remove(worker) != nil else { return [] }
        live.insert(worker)
        failures = 0
        return []
    }

    public mutating func forkFailed(_ worker: WorkerID, reason: String) -> [Action] {
        guard forking.remove(worker) != nil else { return [] }
        return [.workerFailed(worker, reason: reason)] + idleStop()
    }

    /// The template reported a forked worker's exit.
    public mutating func workerExited(_ worker: WorkerID) -> [Action] {
        guard live.remove(worker) != nil else { return [] }
        return idleStop()
    }

    /// The template process is gone (also when it could not be spawned at all).
    public mutating func templateExited(status: String) -> [Action] {
        let reason = failureReason ?? "the template process exited (\(status))"
        failureReason = nil
        let lost = live.sorted()
        let unforked = forking.sorted()
        live.removeAll()
        forking.removeAll()
        var actions: [Action] = lost.map { .workerLost($0) }
        switch phase {
        case .finished:
            return actions + unforked.map { .workerFailed($0, reason: "the revision is stopping") }
        case .stopping where unforked.isEmpty && lost.isEmpty:
            // An idle stop, as asked. A worker wanted meanwhile starts a new template.
            phase = .stopped
            if !queued.isEmpty {
                phase = .starting
                actions.append(.spawn)
            }
            return actions
        default:
            break
        }
        failures += 1
        lastFailure = reason
        actions += unforked.map { .workerFailed($0, reason: reason) }
        actions += queued.map { .workerFailed($0, reason: reason) }
        queued.removeAll()
        phase = .waitingToRestart
        let delay = min(configuration.restartDelay << UInt64(min(failures - 1, 40)), configuration.maximumRestartDelay)
        actions.append(.scheduleRestart(after: delay))
        return actions
    }

    public mutating func restartFired() -> [Action] {
        guard phase == .waitingToRestart else { return [] }
        guard configuration.keepWhileIdle || !queued.isEmpty else {
            phase = .stopped
            return []
        }
        phase = .starting
        return [.spawn]
    }

    /// The revision has stopped all its workers (redeploy, undeploy, shutdown).
    public mutating func finish() -> [Action] {
        let waiting = queued
        queued.removeAll()
        let actions: [Action] = waiting.map { .workerFailed($0, reason: "the revision is stopping") }
        switch phase {
        case .starting, .ready, .stopping:
            phase = .finished
            return actions + [.stop]
        case .stopped, .waitingToRestart, .finished:
            phase = .finished
            return actions
        }
    }

    /// Without `idleTemplate`, the template goes with the last worker.
    private mutating func idleStop() -> [Action] {
        guard !configuration.keepWhileIdle, phase == .ready, queued.isEmpty, forking.isEmpty, live.isEmpty else { return [] }
        phase = .stopping
        return [.stop]
    }
}
