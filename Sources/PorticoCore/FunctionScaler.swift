/// The decisions for one function revision: which worker serves each request, when requests wait,
/// when worker processes start and stop (the roles of Knative's activator and autoscaler).
///
/// The machine never touches a process, a timer or a socket, and never reads a clock: the shell
/// (the function supervisor in PorticoProxy) spawns and probes workers, runs the timers, proxies the
/// requests, reports each event with the monotonic time `now` in nanoseconds, and performs the
/// returned `Actions` in order. So every path can be driven event by event in a unit test.
///
/// Guarantees the tests check:
/// - live processes (starting + ready + draining + stopping) never exceed `maxWorkers`;
/// - no worker is given more than `concurrency` requests at once;
/// - a worker with requests in flight is never stopped for idleness;
/// - a request is never refused because the function is cold: it waits. `queueLimit` bounds
///   only the requests beyond what the workers that are starting, or may still start, will
///   take (`concurrency` each), so a cold burst starts workers up to `maxWorkers` (as Knative's
///   activator holds a cold burst until capacity arrives).
///
/// Requests in flight on a worker that exits are forgotten: the proxy sees the broken connection
/// and answers 502 itself, and a late `requestFinished` for them is ignored.
public struct FunctionScaler: Sendable {
    public let configuration: Configuration

    /// Ordered by id (ids are minted in increasing order), so ties go to the oldest, warmest worker.
    public private(set) var workers: [Worker] = []
    private var queue: [RequestID] = []
    private var queueHead = 0
    private var nextWorkerID: UInt64 = 1

    /// Failed starts (crash before ready, or startup timeout) since a worker last became ready.
    public private(set) var consecutiveStartFailures = 0
    /// No worker may start before this time (crash backoff).
    private var startsAllowedAt: UInt64 = 0
    /// Ready workers that crashed in a row, each soon after it became ready (see `recordCrash`).
    public private(set) var consecutiveCrashes = 0
    /// No replacement for a crashed ready worker may start before this time. Kept apart from
    /// `startsAllowedAt`, which a worker becoming ready clears: a worker that comes up and dies
    /// again must not restart in a tight loop (kubelet's CrashLoopBackOff).
    private var crashRestartsAllowedAt: UInt64 = 0
    private var retryPending = false

    public private(set) var isDraining = false
    /// Set by `warmUp`: one worker is wanted even without requests, until one is ready.
    public private(set) var isWarming = false

    public init(configuration: Configuration) {
        self.configuration = configuration
    }

    // MARK: - Queries

    public var queueLength: Int { queue.count - queueHead }
    /// The waiting requests, oldest first.
    public var queuedRequests: [RequestID] { Array(queue[queueHead...]) }
    /// Processes that exist in any state; never more than `maxWorkers`.
    public var liveWorkerCount: Int { workers.count }
    public var readyWorkerCount: Int { count(.ready) }
    public var startingWorkerCount: Int { count(.starting) }
    public var inFlightCount: Int { workers.reduce(0) { $0 + $1.inFlight } }
    /// True once the revision was drained and its last worker exited.
    public var isFinished: Bool { isDraining && workers.isEmpty }

    public func worker(_ id: WorkerID) -> Worker? {
        index(of: id).map { workers[$0] }
    }

    // MARK: - Events

    /// The revision was deployed: start `minWorkers` workers.
    public mutating func start(now: UInt64) -> Actions {
        var actions = Actions()
        scaleUp(now: now, into: &actions)
        return actions
    }

    /// A new revision is to take over from a serving one: start a worker now, without waiting
    /// for a request, so the shell can switch traffic once it is ready (Knative routes to a new
    /// revision only once it is ready). The wish ends when a worker becomes ready; after that
    /// the worker idles out like any other.
    public mutating func warmUp(now: UInt64) -> Actions {
        guard !isDraining else { return [] }
        isWarming = true
        var actions = Actions()
        scaleUp(now: now, into: &actions)
        return actions
    }

    /// The warm-up is given up (its starts kept failing, `.crashLooping`): no worker is wanted
    /// for it any more, so a broken function that nobody calls is not restarted for ever.
    /// Requests still start workers, after the backoff.
    public mutating func cancelWarmUp() {
        isWarming = false
    }

    /// A request wants a worker.
    public mutating func requestArrived(_ request: RequestID, now: UInt64) -> Actions {
        guard !isDraining else { return [.reject(request, .draining)] }
        // Nobody may overtake a waiting request, so a warm worker is used directly only when the
        // queue is empty (a ready worker with spare capacity and a non-empty queue never coexist).
        if queueLength == 0, let worker = leastLoadedReadyWorker() {
            return [dispatch(request, to: worker)]
        }
        guard queueLength < configuration.queueLimit + capacityOnItsWay else { return [.reject(request, .queueFull)] }
        queue.append(request)
        var actions = Actions()
        dispatchQueued(into: &actions)
        scaleUp(now: now, into: &actions)
        return actions
    }

    /// A request still waiting in the queue was abandoned (client gone, deadline passed).
    /// Requests already dispatched end with `requestFinished` instead.
    public mutating func requestCancelled(_ request: RequestID) {
        if let position = queue[queueHead...].firstIndex(of: request) {
            queue.remove(at: position)
            compactQueue()
        }
    }

    /// The worker answered its readiness probe.
    public mutating func workerReady(_ id: WorkerID, now: UInt64) -> Actions {
        // A worker killed at startup or stopped by a drain may still report ready: ignore it.
        guard let w = index(of: id), workers[w].state == .starting else { return [] }
        workers[w].state = .ready
        workers[w].readySince = now
        isWarming = false
        consecutiveStartFailures = 0
        startsAllowedAt = 0

        var actions = Actions()
        while hasSpareCapacity(workers[w]), let request = dequeue() {
            actions.append(dispatch(request, to: w))
        }
        dispatchQueued(into: &actions)
        if workers[w].inFlight == 0 {
            becameIdle(w, now: now, into: &actions)
        }
        // The backoff is over now, so starts it held back may happen at once.
        scaleUp(now: now, into: &actions)
        return actions
    }

    /// A dispatched request ended (in any way) on `worker`. Report each dispatched request once.
    public mutating func requestFinished(_ request: RequestID, worker id: WorkerID, now: UInt64) -> Actions {
        guard let w = index(of: id), workers[w].inFlight > 0 else { return [] }
        workers[w].inFlight -= 1
        switch workers[w].state {
        case .ready:
            if let next = dequeue() {
                return [dispatch(next, to: w)]
            }
            if workers[w].inFlight == 0 {
                var actions = Actions()
                becameIdle(w, now: now, into: &actions)
                return actions
            }
            return []
        case .draining:
            if workers[w].inFlight == 0 {
                workers[w].state = .stopping
                return [.stopWorker(id)]
            }
            return []
        case .starting, .stopping:
            return []
        }
    }

    /// An idle check scheduled with `.scheduleIdleCheck` is due.
    public mutating func idleCheckFired(_ id: WorkerID, now: UInt64) -> Actions {
        guard let w = index(of: id) else { return [] }
        workers[w].pendingIdleChecks = max(0, workers[w].pendingIdleChecks - 1)
        guard workers[w].state == .ready, workers[w].inFlight == 0, let idleSince = workers[w].idleSince else {
            // Busy (or no longer ready): the worker schedules a fresh check when it next goes idle.
            return []
        }
        let idleFor = now >= idleSince ? now - idleSince : 0
        if idleFor < configuration.idleTimeout {
            // The worker was busy and went idle again since this check was scheduled. The check
            // scheduled then is still coming; if none is (the timer fired early), schedule one.
            guard workers[w].pendingIdleChecks == 0 else { return [] }
            workers[w].pendingIdleChecks += 1
            return [.scheduleIdleCheck(id, after: configuration.idleTimeout - idleFor)]
        }
        // Keep minWorkers. The kept worker gets a new check the next time it goes idle; it cannot
        // become surplus before then, because scaling up only happens once every ready worker is full.
        guard readyWorkerCount + startingWorkerCount - 1 >= configuration.minWorkers else { return [] }
        workers[w].state = .stopping
        workers[w].idleSince = nil
        return [.stopWorker(id)]
    }

    /// A startup timeout scheduled with `.scheduleStartupTimeout` is due.
    public mutating func startupTimeoutFired(_ id: WorkerID, now: UInt64) -> Actions {
        guard let w = index(of: id), workers[w].state == .starting else { return [] }
        workers[w].state = .stopping
        var actions: Actions = [.killWorker(id)]
        // With no other worker on its way the waiting requests would wait through a backoff for a
        // worker that may never come: answer them 504 now. Otherwise they wait for the others.
        if readyWorkerCount + startingWorkerCount == 0 {
            while let request = dequeue() {
                actions.append(.fail(request, .startupTimeout))
            }
        }
        recordFailedStart(now: now, into: &actions)
        scaleUp(now: now, into: &actions)
        return actions
    }

    /// A worker thought ready failed: it refused a connection (it died and its exit has not
    /// been seen yet, or it stopped listening), or outlier detection ejected it. It gets no
    /// more requests; it is killed, and the capacity it leaves is replaced as for a crash. A
    /// request that found it out reports `requestFinished` as usual.
    public mutating func workerFailed(_ id: WorkerID, now: UInt64) -> Actions {
        guard let w = index(of: id), workers[w].state == .ready || workers[w].state == .draining else { return [] }
        workers[w].state = .stopping
        workers[w].idleSince = nil
        var actions: Actions = [.replaceFailedWorker(id)]
        scaleUp(now: now, into: &actions)
        return actions
    }

    /// Outlier detection ejected a ready worker: it gets no more requests, finishes the ones it
    /// has (an ejection never cuts a request short, as in Envoy), and is then stopped; its
    /// capacity is replaced as needed.
    public mutating func workerEjected(_ id: WorkerID, now: UInt64) -> Actions {
        guard let w = index(of: id), workers[w].state == .ready else { return [] }
        workers[w].idleSince = nil
        var actions = Actions()
        if workers[w].inFlight == 0 {
            workers[w].state = .stopping
            actions.append(.stopWorker(id))
        } else {
            workers[w].state = .draining
        }
        scaleUp(now: now, into: &actions)
        return actions
    }

    /// The worker's process exited (crashed, was stopped, or was killed).
    public mutating func workerExited(_ id: WorkerID, now: UInt64) -> Actions {
        guard let w = index(of: id) else { return [] }
        let exited = workers.remove(at: w)
        var actions = Actions()
        if exited.state == .starting {
            // Crashed before becoming ready. (A worker killed by the startup timeout is `.stopping`
            // by now and was counted as a failure then.)
            recordFailedStart(now: now, into: &actions)
        } else if exited.state == .ready || exited.state == .draining, !isDraining {
            // Nobody told it to stop: it crashed after it had come up.
            recordCrash(of: exited, now: now)
        }
        // Replace lost capacity for waiting requests and minWorkers; a ready worker's crash is
        // replaced at once, a failed start only after the backoff.
        scaleUp(now: now, into: &actions)
        return actions
    }

    /// A retry scheduled with `.scheduleRetry` is due: start the workers still needed.
    public mutating func retryFired(now: UInt64) -> Actions {
        retryPending = false
        var actions = Actions()
        scaleUp(now: now, into: &actions)
        return actions
    }

    /// The revision is replaced or removed: stop taking requests, hand the waiting ones back,
    /// stop idle workers now and busy ones when their last request ends.
    public mutating func drain() -> Actions {
        guard !isDraining else { return [] }
        isDraining = true
        var actions = Actions()
        var waiting: [RequestID] = []
        while let request = dequeue() { waiting.append(request) }
        if !waiting.isEmpty { actions.append(.requeueElsewhere(waiting)) }
        for w in workers.indices {
            switch workers[w].state {
            case .starting:
                workers[w].state = .stopping
                actions.append(.stopWorker(workers[w].id))
            case .ready where workers[w].inFlight == 0:
                workers[w].state = .stopping
                workers[w].idleSince = nil
                actions.append(.stopWorker(workers[w].id))
            case .ready:
                workers[w].state = .draining
            case .draining, .stopping:
                break
            }
        }
        return actions
    }

    // MARK: - Decisions

    /// Starts the workers that the waiting and in-flight requests (and `minWorkers`) need, without
    /// ever letting live processes exceed `maxWorkers`, and not before the crash backoff ends.
    private mutating func scaleUp(now: UInt64, into actions: inout Actions) {
        guard !isDraining else { return }
        let demand = inFlightCount + queueLength
        var needed: Int
        if configuration.concurrency == 0 {
            needed = demand > 0 ? 1 : 0
        } else {
            needed = (demand + configuration.concurrency - 1) / configuration.concurrency
        }
        needed = min(max(needed, configuration.minWorkers, isWarming ? 1 : 0), configuration.maxWorkers)
        // Draining and stopping workers are no capacity, but they are processes.
        let toStart = min(
            needed - (readyWorkerCount + startingWorkerCount),
            configuration.maxWorkers - liveWorkerCount
        )
        guard toStart > 0 else { return }
        let allowedAt = max(startsAllowedAt, crashRestartsAllowedAt)
        guard now >= allowedAt else {
            if !retryPending {
                retryPending = true
                actions.append(.scheduleRetry(after: allowedAt - now))
            }
            return
        }
        for _ in 0..<toStart {
            let id = WorkerID(nextWorkerID)
            nextWorkerID += 1
            workers.append(Worker(id: id))
            actions.append(.startWorker(id))
            actions.append(.scheduleStartupTimeout(id, after: configuration.startupTimeout))
        }
    }

    private mutating func recordFailedStart(now: UInt64, into actions: inout Actions) {
        consecutiveStartFailures += 1
        let backoff = Self.backoff(afterFailures: consecutiveStartFailures, configuration.crashBackoff)
        let (end, overflow) = now.addingReportingOverflow(backoff)
        startsAllowedAt = overflow ? .max : end
        if consecutiveStartFailures >= 3 {
            actions.append(.crashLooping(consecutiveFailures: consecutiveStartFailures))
        }
    }

    /// A ready worker crashed. The first crash is replaced at once (the worker had come up
    /// fine, and requests or `minWorkers` may be waiting); each further crash of a worker that
    /// had been ready for less than `crashBackoff.max` waits `crashBackoff`, doubling, as kubelet
    /// backs off a container that keeps crashing. A worker that stayed up that long ends the run.
    private mutating func recordCrash(of worker: Worker, now: UInt64) {
        let upFor = worker.readySince.map { now >= $0 ? now - $0 : 0 } ?? 0
        if upFor >= configuration.crashBackoff.max { consecutiveCrashes = 0 }
        consecutiveCrashes += 1
        guard consecutiveCrashes >= 2 else { return }
        let backoff = Self.backoff(afterFailures: consecutiveCrashes - 1, configuration.crashBackoff)
        let (end, overflow) = now.addingReportingOverflow(backoff)
        crashRestartsAllowedAt = overflow ? .max : end
    }

    /// `min(initial * 2^(failures-1), max)`, without overflowing.
    static func backoff(afterFailures failures: Int, _ bounds: (initial: UInt64, max: UInt64)) -> UInt64 {
        var delay = bounds.initial
        var doublings = failures - 1
        while doublings > 0 && delay < bounds.max {
            let (doubled, overflow) = delay.multipliedReportingOverflow(by: 2)
            delay = overflow ? bounds.max : doubled
            doublings -= 1
        }
        return min(delay, bounds.max)
    }

    /// What the workers that are starting, and those that may still start under `maxWorkers`,
    /// will take once ready. With `concurrency: 0` a worker's capacity is unknown (unbounded),
    /// so nothing is counted and `queueLimit` alone bounds the wait.
    private var capacityOnItsWay: Int {
        guard configuration.concurrency > 0 else { return 0 }
        let workersComing = startingWorkerCount + max(0, configuration.maxWorkers - liveWorkerCount)
        let (capacity, overflow) = workersComing.multipliedReportingOverflow(by: configuration.concurrency)
        return overflow ? Int.max - configuration.queueLimit : min(capacity, Int.max - configuration.queueLimit)
    }

    /// Hands waiting requests, oldest first, to ready workers with spare capacity.
    private mutating func dispatchQueued(into actions: inout Actions) {
        while queueLength > 0, let w = leastLoadedReadyWorker(), let request = dequeue() {
            actions.append(dispatch(request, to: w))
        }
    }

    /// The ready worker with spare capacity and the fewest requests; ties go to the lowest id.
    private func leastLoadedReadyWorker() -> Int? {
        var best: Int?
        for w in workers.indices where workers[w].state == .ready && hasSpareCapacity(workers[w]) {
            if best == nil || workers[w].inFlight < workers[best!].inFlight { best = w }
        }
        return best
    }

    private func hasSpareCapacity(_ worker: Worker) -> Bool {
        configuration.concurrency == 0 || worker.inFlight < configuration.concurrency
    }

    private mutating func dispatch(_ request: RequestID, to w: Int) -> Action {
        workers[w].inFlight += 1
        workers[w].idleSince = nil
        return .dispatch(request, to: workers[w].id)
    }

    private mutating func becameIdle(_ w: Int, now: UInt64, into actions: inout Actions) {
        workers[w].idleSince = now
        workers[w].pendingIdleChecks += 1
        actions.append(.scheduleIdleCheck(workers[w].id, after: configuration.idleTimeout))
    }

    private func index(of id: WorkerID) -> Int? {
        workers.firstIndex { $0.id == id }
    }

    private func count(_ state: WorkerState) -> Int {
        workers.reduce(0) { $0 + ($1.state == state ? 1 : 0) }
    }

    private mutating func dequeue() -> RequestID? {
        guard queueHead < queue.count else { return nil }
        let request = queue[queueHead]
        queueHead += 1
        compactQueue()
        return request
    }

    private mutating func compactQueue() {
        // Compact now and then so the array does not grow without bound.
        if queueHead == queue.count {
            queue.removeAll(keepingCapacity: true)
            queueHead = 0
        } else if queueHead > 64 && queueHead * 2 > queue.count {
            queue.removeFirst(queueHead)
            queueHead = 0
        }
    }
}
