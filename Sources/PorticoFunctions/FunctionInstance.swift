import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import PorticoConfig
import PorticoCore
import PorticoProxy
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Why a function request got no worker: the proxy's reasons (queue full, startup timeout,
/// draining, crash looping), each of which it maps to a status.
typealias FunctionUnavailable = BackendUnavailable

/// One revision of an http-mode function: the shell around its `FunctionScaler`.
///
/// The scaler's decisions are global to the function (a worker's concurrency limit holds
/// across every event loop), so they live on one home event loop. A request on another loop
/// hops there to get its worker and hops back with the lease; the proxying itself (the
/// connection to the worker, the bytes) stays on the request's own loop. With one event loop
/// (`--threads 1`) there is no hop at all.
///
/// `@unchecked Sendable`: its mutable state is confined to `homeLoop` (see below), which the
/// compiler cannot see; the entry points hop there.
public final class FunctionInstance: @unchecked Sendable {
    typealias LeaseCallback = (Result<WorkerLease, FunctionUnavailable>) -> Void

    public let manifest: FunctionManifest
    public let revision: String
    public let homeLoop: EventLoop
    let logger: Logger
    let metrics: FunctionMetrics
    /// Called (on the home loop) when a worker's port is gone for good, so event loops can drop
    /// their connection pools to it.
    let onWorkerGone: @Sendable (HostPort) -> Void
    /// Body bytes held for requests that wait for a worker, on every event loop: bounded by
    /// `queueBodyLimit`. An atomic, not the home loop's state: a body part arrives on its
    /// request's loop, and hopping there and back for each part would let the bytes pile up
    /// meanwhile. Only waiting requests touch it, never a request that has its worker.
    let waitingBodyBytes = Atomic<Int>(0)

    // Home loop only, from here on: the class is `@unchecked Sendable` because every mutable
    // field below is touched only on `homeLoop`, which the compiler cannot see.

    /// Called with requests a draining revision hands over to its successor.
    var requeue: ([(UInt64, Waiter)]) -> Void = { waiters in
        for (_, waiter) in waiters { waiter.complete(.failure(.draining)) }
    }
    /// The revision that took over this one's waiting requests.
    var successor: FunctionInstance?
    /// Told once the drain has stopped every worker. Set by `drain(then:)` on the home loop:
    /// the registry used to set it from its own queue while the home loop could be calling it,
    /// a data race; the check makes any write off the loop fail at once, in tests too.
    private var onFinished: @Sendable () -> Void = {} {
        willSet { homeLoop.preconditionInEventLoop() }
    }
    private(set) var scaler: FunctionScaler
    private(set) var workers: [FunctionScaler.WorkerID: WorkerProcess] = [:]
    private var waiting: [FunctionScaler.RequestID: Waiter] = [:]
    private var startupTimers: [FunctionScaler.WorkerID: Scheduled<Void>] = [:]
    private(set) var lastError: String?
    private var startedRequestIDs: Set<FunctionScaler.RequestID> = []
    /// Why a worker is being replaced, for the log line that says so.
    private var failureReasons: [FunctionScaler.WorkerID: String] = [:]
    /// 5xx and gateway errors in a row, per worker (outlier detection).
    private var outlierCounts: [FunctionScaler.WorkerID: (fiveXX: Int, gateway: Int)] = [:]
    private var lastEjection: UInt64?
    /// Told once how a warm-up ended: nil when a worker is ready, else why none will be.
    private var warmUpDone: (@Sendable (String?) -> Void)?
    /// The revision's cold-start series, made with its first worker: a thousand functions
    /// that never ran cost no series.
    private var revisionMetricsStorage: FunctionRevisionMetrics?
    private var revisionMetrics: FunctionRevisionMetrics {
        if let made = revisionMetricsStorage { return made }
        let made = FunctionRevisionMetrics(function: manifest.name, revision: revision, registry: metrics.registry)
        revisionMetricsStorage = made
        return made
    }
    /// The process workers are forked from (`runtime: python` with a template).
    private(set) var template: PythonTemplate?
    /// Lambda mode: each worker's Runtime API.
    private var lambdaServers: [FunctionScaler.WorkerID: LambdaRuntimeServer] = [:]
    /// Lambda mode: the init error a worker's runtime reported, for `lastError` once it exits.
    private var initErrors: [FunctionScaler.WorkerID: String] = [:]
    /// A worker of this revision has been ready (what `portico deploy` waits for).
    private(set) var hasBeenReady = false
    /// Why the warm-up gave up: starts kept failing before any worker was ready.
    private(set) var warmUpFailure: String?

    /// A request waiting for a worker. It travels to the home loop and back; its callback
    /// belongs to the request's loop, and the box checks that it is called only there.
    struct Waiter: Sendable {
        let loop: EventLoop
        let arrived: NIODeadline
        let callback: NIOLoopBoundBox<LeaseCallback>
        /// Set when the request had to wait for a worker to start.
        var waitedForStart = false

        func complete(_ result: Result<WorkerLease, FunctionUnavailable>) {
            if loop.inEventLoop {
                callback.value(result)
            } else {
                let callback = self.callback
                loop.execute { callback.value(result) }
            }
        }
    }

    init(manifest: FunctionManifest, revision: String, homeLoop: EventLoop, logger: Logger, metrics: FunctionMetrics,
         onWorkerGone: @escaping @Sendable (HostPort) -> Void) {
        self.onWorkerGone = onWorkerGone
        self.manifest = manifest
        self.revision = revision
        self.homeLoop = homeLoop
        self.logger = logger
        self.metrics = metrics
        self.scaler = FunctionScaler(configuration: .init(
            concurrency: manifest.workerConcurrency, minWorkers: manifest.minWorkers, maxWorkers: manifest.maxWorkers,
            queueLimit: max(1, manifest.queueLimit),
            idleTimeout: UInt64(manifest.idleTimeout.nanoseconds), startupTimeout: UInt64(manifest.startupTimeout.nanoseconds)))
        if manifest.runtime == .python && manifest.usesTemplate {
            template = PythonTemplate(manifest: manifest, revision: revision, eventLoop: homeLoop, logger: logger, events: .init(
                forked: { [weak self] number, pid in self?.workerForked(FunctionScaler.WorkerID(number), pid: pid) },
                // Later, not within the template's own call: the scaler may start another worker.
                exited: { [weak self] number, exit in
                    self?.homeLoop.assumeIsolated().execute { self?.workerExited(FunctionScaler.WorkerID(number), exit) }
                },
                failed: { [weak self] number, reason in
                    self?.homeLoop.assumeIsolated().execute { self?.workerNotForked(FunctionScaler.WorkerID(number), reason: reason) }
                }))
        }
    }

    private var now: UInt64 { NIODeadline.now().uptimeNanoseconds }

    /// Starts the `minWorkers` the function always keeps.
    func start() {
        homeLoop.execute {
            self.template?.deployed()
            self.perform(self.scaler.start(now: self.now))
        }
    }

    /// Starts one worker before this revision takes any traffic; `done` hears (on the home
    /// loop) nil once it is ready, or why the revision cannot become ready (its starts keep
    /// failing). The revision it replaces serves meanwhile.
    func warmUp(_ done: @escaping @Sendable (String?) -> Void) {
        homeLoop.execute {
            self.warmUpDone = done
            self.template?.deployed()
            self.perform(self.scaler.warmUp(now: self.now))
        }
    }

    private func finishWarmUp(_ failure: String?) {
        if failure == nil { hasBeenReady = true } else if !hasBeenReady { warmUpFailure = failure }
        guard let done = warmUpDone else { return }
        warmUpDone = nil
        done(failure)
    }

    // MARK: Requests (called from any event loop, through its `Backend` conformance)

    /// Asks for a worker. Call on `loop`, the request's loop: `callback` runs there (and is
    /// checked to). `id` must be unique for this function.
    func acquire(id: UInt64, on loop: EventLoop, _ callback: @escaping LeaseCallback) {
        let waiter = Waiter(loop: loop, arrived: .now(), callback: NIOLoopBoundBox(callback, eventLoop: loop))
        if homeLoop.inEventLoop {
            arrive(FunctionScaler.RequestID(id), waiter)
        } else {
            homeLoop.execute { self.arrive(FunctionScaler.RequestID(id), waiter) }
        }
    }

    func release(_ lease: WorkerLease) {
        guard lease.instance === self else { return lease.instance.release(lease) }
        let run: @Sendable () -> Void = {
            self.perform(self.scaler.requestFinished(FunctionScaler.RequestID(lease.requestID),
                                                     worker: FunctionScaler.WorkerID(lease.worker), now: self.now))
        }
        homeLoop.inEventLoop ? run() : homeLoop.execute(run)
    }

    /// The lease's worker refused the connection: the request is done with it, and the worker
    /// gets no more (it is killed and replaced). The caller then asks again for another worker.
    func workerUnreachable(_ lease: WorkerLease) {
        guard lease.instance === self else { return lease.instance.workerUnreachable(lease) }
        let run: @Sendable () -> Void = {
            let worker = FunctionScaler.WorkerID(lease.worker)
            self.failureReasons[worker] = "refused a connection"
            self.perform(self.scaler.workerFailed(worker, now: self.now))
            self.perform(self.scaler.requestFinished(FunctionScaler.RequestID(lease.requestID), worker: worker, now: self.now))
        }
        homeLoop.inEventLoop ? run() : homeLoop.execute(run)
    }

    /// What a request on `lease`'s worker came to, for `outlierDetection`: a status, or nil
    /// when the worker gave no answer (reset, timeout). Only called when the manifest has it.
    ///
    /// A function's workers are its endpoints, so they are ejected as a service's are, after
    /// `consecutive5xx` 5xx or `consecutiveGatewayErrors` 502/503/504 (or no answer) in a row.
    /// A worker is a process of Portico's own, so ejecting it means replacing it: it gets no
    /// more requests, finishes those it has, is stopped, and a fresh one takes its place when
    /// one is needed. At most
    /// one worker is ejected per `baseEjectionTime`, so a function that fails everything (a bug
    /// in it, not a bad worker) is not restarted in a loop; its workers keep serving meanwhile.
    func recordOutcome(_ lease: WorkerLease, status: Int?) {
        guard let outlier = manifest.outlierDetection else { return }
        guard lease.instance === self else { return lease.instance.recordOutcome(lease, status: status) }
        let run: @Sendable () -> Void = {
            let worker = FunctionScaler.WorkerID(lease.worker)
            guard self.scaler.worker(worker)?.state == .ready else { return }  // already on its way out
            var counts = self.outlierCounts[worker] ?? (fiveXX: 0, gateway: 0)
            let code = status ?? 503
            guard code >= 500 && code <= 599 else {
                self.outlierCounts[worker] = nil
                return
            }
            counts.fiveXX += 1
            counts.gateway = (code == 502 || code == 503 || code == 504) ? counts.gateway + 1 : 0
            self.outlierCounts[worker] = counts
            let tripped = (outlier.consecutive5xx.map { counts.fiveXX >= $0 } ?? false)
                || (outlier.consecutiveGatewayErrors.map { counts.gateway >= $0 } ?? false)
            guard tripped else { return }
            self.outlierCounts[worker] = nil
            let now = self.now
            if let last = self.lastEjection, now - last < UInt64(outlier.baseEjectionTime.nanoseconds) { return }
            guard outlier.maxEjectionPercent > 0, self.scaler.worker(worker)?.state == .ready else { return }
            self.lastEjection = now
            self.metrics.ejections.increment()
            let reason = "ejected by outlier detection (\(status == nil ? "no answer" : "status \(code)"))"
            self.failureReasons[worker] = reason
            if let process = self.workers[worker] {
                self.logger.warning("worker \(reason); replacing it once its requests are done",
                                    metadata: self.metadata(process, [:]))
            }
            self.perform(self.scaler.workerEjected(worker, now: now))
        }
        homeLoop.inEventLoop ? run() : homeLoop.execute(run)
    }

    /// The client gave up while waiting for a worker.
    func cancel(id: UInt64) {
        let run: @Sendable () -> Void = {
            let requestID = FunctionScaler.RequestID(id)
            guard self.waiting.removeValue(forKey: requestID) != nil else {
                // Handed over in a redeploy: the successor holds it now.
                self.successor?.cancel(id: id)
                return
            }
            self.scaler.requestCancelled(requestID)
            self.updateGauges()
        }
        homeLoop.inEventLoop ? run() : homeLoop.execute(run)
    }

    func arrive(_ id: FunctionScaler.RequestID, _ waiter: Waiter) {
        waiting[id] = waiter
        perform(scaler.requestArrived(id, now: now))
        updateGauges()
    }

    /// Takes over requests from the revision this one replaces, under their own ids (unique
    /// in the process), so a client that gives up can still cancel its wait.
    func adopt(_ waiters: [(UInt64, Waiter)]) {
        homeLoop.execute {
            for (id, waiter) in waiters {
                self.arrive(FunctionScaler.RequestID(id), waiter)
            }
        }
    }

    /// Stops taking requests; queued ones go to `requeue`, workers stop once idle, and then
    /// `finished` is called on the home loop (at once when nothing runs). A second drain
    /// replaces the first one's `finished`.
    func drain(then finished: @escaping @Sendable () -> Void) {
        homeLoop.execute {
            self.onFinished = finished
            let wasDraining = self.scaler.isDraining
            self.perform(self.scaler.drain())
            self.checkFinished()
            if !wasDraining && !self.workers.isEmpty {
                self.limitStreams()
            }
        }
    }

    /// Workers still busy in a drain (a WebSocket, an event stream) finish on their own, but
    /// not later than `maxStreamDuration`: then they are stopped like an idle one, and what
    /// they still serve ends with them.
    private func limitStreams() {
        homeLoop.assumeIsolated().scheduleTask(in: manifest.maxStreamDuration.nanosecondsAmount) { [self] in
            for (workerID, worker) in workers where !worker.exited {
                failureReasons[workerID] = "still serving \(manifest.maxStreamDuration) after the drain began (maxStreamDuration)"
                logger.info("stopping worker", metadata: metadata(worker, ["reason": .string(failureReasons[workerID] ?? "")]))
                worker.stop(grace: manifest.gracePeriod.nanosecondsAmount)
            }
        }
    }

    // MARK: Scaler actions

    private func perform(_ actions: FunctionScaler.Actions) {
        for action in actions { perform(action) }
    }

    private func perform(_ action: FunctionScaler.Action) {
        switch action {
        case .dispatch(let requestID, to: let workerID):
            guard let waiter = waiting.removeValue(forKey: requestID), let worker = workers[workerID] else { return }
            let cold = startedRequestIDs.remove(requestID) != nil
            let waited = NIODeadline.now().uptimeNanoseconds &- waiter.arrived.uptimeNanoseconds
            let revisionMetrics = self.revisionMetrics
            revisionMetrics.wait.recordNanoseconds(Int64(waited))
            var phases: ColdStartPhases?
            if cold {
                metrics.coldStarts.increment()
                metrics.coldStartDuration.recordNanoseconds(Int64(waited))
                revisionMetrics.coldStarts.increment()
                phases = ColdStartPhases(waitNanoseconds: waited, spawnNanoseconds: worker.startPhases?.spawn ?? 0,
                                         startToReadyNanoseconds: worker.startPhases?.startToReady ?? 0)
            }
            waiter.complete(.success(WorkerLease(instance: self, requestID: requestID.rawValue, worker: workerID.rawValue,
                                                 endpoint: HostPort(host: "127.0.0.1", port: worker.port), coldStartPhases: phases,
                                                 metrics: phases == nil ? nil : revisionMetrics,
                                                 firstConnection: worker.takeFirstConnection())))
        case .reject(let requestID, let reason):
            guard let waiter = waiting.removeValue(forKey: requestID) else { return }
            switch reason {
            case .queueFull: waiter.complete(.failure(.queueFull))
            case .draining: waiter.complete(.failure(.draining))
            }
        case .fail(let requestID, _):
            startedRequestIDs.remove(requestID)
            waiting.removeValue(forKey: requestID)?.complete(.failure(.startupTimeout))
        case .startWorker(let workerID):
            // Every request waiting now waited for a start: that is what a cold start is.
            startedRequestIDs.formUnion(waiting.keys)
            startWorker(workerID)
        case .scheduleStartupTimeout(let workerID, after: let delay):
            startupTimers[workerID] = homeLoop.assumeIsolated().scheduleTask(in: .nanoseconds(Int64(delay))) { [self] in
                startupTimers[workerID] = nil
                perform(scaler.startupTimeoutFired(workerID, now: now))
            }
        case .scheduleIdleCheck(let workerID, after: let delay):
            homeLoop.assumeIsolated().scheduleTask(in: .nanoseconds(Int64(delay))) { [self] in
                perform(scaler.idleCheckFired(workerID, now: now))
            }
        case .stopWorker(let workerID):
            if let worker = workers[workerID] {
                let reason = failureReasons.removeValue(forKey: workerID)
                    ?? (scaler.isDraining ? "draining (redeploy, undeploy or shutdown)" : "idle for \(manifest.idleTimeout)")
                logger.info("stopping worker", metadata: metadata(worker, ["reason": .string(reason)]))
                worker.stop(grace: manifest.gracePeriod.nanosecondsAmount)
            }
        case .killWorker(let workerID):
            if let worker = workers[workerID] {
                lastError = "worker \(workerID.rawValue) not ready within \(manifest.startupTimeout)"
                logger.warning("worker not ready in time; killing it", metadata: metadata(worker, [:]))
                worker.kill()
            }
        case .replaceFailedWorker(let workerID):
            let reason = failureReasons.removeValue(forKey: workerID) ?? "failed"
            outlierCounts[workerID] = nil
            if let worker = workers[workerID] {
                lastError = "worker \(workerID.rawValue) \(reason)"
                logger.warning("worker \(reason); replacing it", metadata: metadata(worker, [:]))
                worker.kill()
            }
        case .scheduleRetry(after: let delay):
            homeLoop.assumeIsolated().scheduleTask(in: .nanoseconds(Int64(delay))) { [self] in
                perform(scaler.retryFired(now: now))
            }
        case .requeueElsewhere(let requestIDs):
            let handedOver = requestIDs.compactMap { id in waiting.removeValue(forKey: id).map { (id.rawValue, $0) } }
            requeue(handedOver)
        case .crashLooping(let failures):
            let previous = lastError.map { " (last: \($0))" } ?? ""
            lastError = "crash loop: \(failures) starts in a row failed" + previous
            scaler.cancelWarmUp()
            finishWarmUp(lastError!)
            logger.error("function keeps failing to start; backing off", metadata: ["function": .string(manifest.name),
                                                                                    "failures": .stringConvertible(failures)])
            // Requests waiting now would wait through every back-off: they hear at once (502),
            // and later requests try again, which is what restarts the function once it is fixed.
            for (requestID, waiter) in waiting {
                scaler.requestCancelled(requestID)
                startedRequestIDs.remove(requestID)
                waiter.complete(.failure(.crashLooping))
            }
            waiting.removeAll()
        }
        updateGauges()
    }

    private func startWorker(_ workerID: FunctionScaler.WorkerID) {
        let started = NIODeadline.now()
        let worker: WorkerProcess
        var lambdaServer: LambdaRuntimeServer?
        do {
            if manifest.mode == .lambda {
                lambdaServer = try LambdaRuntimeServer(eventLoop: homeLoop, functionARN: LambdaFunction.arn(manifest),
                                                       timeout: manifest.requestTimeout.nanosecondsAmount, logger: logger)
            }
            do {
                if let template {
                    let port = try lambdaServer?.port ?? FreePort.pick()
                    worker = WorkerProcess(number: workerID.rawValue, port: port, handle: .forked(template), eventLoop: homeLoop)
                    workers[workerID] = worker
                    logger.info("starting worker", metadata: metadata(worker, ["from": "template"]))
                    if lambdaServer != nil {
                        awaitReadiness(workerID, worker, started: started, lambdaServer: lambdaServer)
                    }
                    template.fork(worker: workerID.rawValue, port: port, environment: WorkerProcess.environment(
                        manifest: manifest, revision: revision, port: port, runtimeAPIPort: lambdaServer?.port, worker: workerID.rawValue))
                    return
                }
                worker = try WorkerProcess.spawn(
                    number: workerID.rawValue, manifest: manifest, revision: revision, eventLoop: homeLoop, logger: logger,
                    runtimeAPIPort: lambdaServer?.port,
                    onExit: { [self] exit in homeLoop.execute { self.workerExited(workerID, exit) } })
            } catch {
                lambdaServer?.close()
                throw error
            }
        } catch {
            lastError = "\(error)"
            logger.error("cannot start worker", metadata: ["function": .string(manifest.name), "error": .string("\(error)")])
            // The machine hears of it as a worker that died before it was ready.
            homeLoop.execute { self.perform(self.scaler.workerExited(workerID, now: self.now)) }
            return
        }
        workers[workerID] = worker
        worker.spawned = .now()
        logger.info("starting worker", metadata: metadata(worker, ["pid": .stringConvertible(worker.pid ?? 0)]))
        awaitReadiness(workerID, worker, started: started, lambdaServer: lambdaServer)
    }

    /// Ready when the probe says so, or, for a Lambda runtime, when it first asks for an invocation.
    private func awaitReadiness(_ workerID: FunctionScaler.WorkerID, _ worker: WorkerProcess, started: NIODeadline,
                                lambdaServer: LambdaRuntimeServer? = nil) {
        let ready = { [self] in markReady(workerID, worker, started: started) }
        guard let lambdaServer else {
            worker.probeReadiness(path: manifest.readinessPath, http2: manifest.protocol == .h2c, onReady: ready)
            return
        }
        // A Lambda runtime is ready when it first asks for an invocation.
        lambdaServers[workerID] = lambdaServer
        lambdaServer.onReady = ready
        lambdaServer.onInitError = { [self] error in
            initErrors[workerID] = error
            logger.error("lambda runtime failed to initialize", metadata: metadata(worker, ["error": .string(error)]))
            worker.kill()
        }
        lambdaServer.onTimedOut = { [self] in
            // Lambda stops a runtime whose invocation times out: it may be stuck for good.
            failureReasons[workerID] = "ran past requestTimeout (\(manifest.requestTimeout)) with an invocation"
            perform(scaler.workerFailed(workerID, now: now))
        }
    }

    private func markReady(_ workerID: FunctionScaler.WorkerID, _ worker: WorkerProcess, started: NIODeadline,
                           extra: Logger.Metadata = [:]) {
        startupTimers.removeValue(forKey: workerID)?.cancel()
        worker.forwardOutputSoon()
        let now = NIODeadline.now().uptimeNanoseconds
        let spawned = (worker.spawned ?? started).uptimeNanoseconds
        worker.startPhases = (spawn: spawned &- started.uptimeNanoseconds, startToReady: now &- spawned)
        revisionMetrics.initDuration.recordNanoseconds(Int64(now &- started.uptimeNanoseconds))
        revisionMetrics.spawn.recordNanoseconds(Int64(spawned &- started.uptimeNanoseconds))
        revisionMetrics.startToReady.recordNanoseconds(Int64(now &- spawned))
        let microseconds = (now &- started.uptimeNanoseconds) / 1000
        let readiness: Logger.Metadata = ["us_to_ready": .stringConvertible(microseconds), "probe": .string(worker.readyBy ?? "runtime-api")]
        logger.info("worker ready", metadata: metadata(worker, extra.merging(readiness) { _, new in new }))
        hasBeenReady = true
        warmUpFailure = nil
        perform(scaler.workerReady(workerID, now: self.now))
        worker.dropFirstConnection()  // no request waited for it
        finishWarmUp(nil)
    }

    /// Lambda mode: runs one invocation on the lease's worker (call on the home loop);
    /// `completion` hears how it ended, on the home loop.
    func invoke(_ lease: WorkerLease, id: String, event: ByteBuffer,
                completion: @escaping (LambdaRuntimeServer.Machine.Outcome) -> Void) {
        guard lease.instance === self else { return lease.instance.invoke(lease, id: id, event: event, completion: completion) }
        homeLoop.preconditionInEventLoop()
        guard let server = lambdaServers[FunctionScaler.WorkerID(lease.worker)] else { return completion(.lost) }
        server.invoke(id: id, event: event, completion: completion)
    }

    /// The template forked the worker. It listens already: the template bound its port before
    /// the fork, so the kernel takes connections for it from this instant, and the handler was
    /// imported long ago. Only a `readiness` path is worth asking.
    private func workerForked(_ workerID: FunctionScaler.WorkerID, pid: Int32) {
        guard let worker = workers[workerID] else { return }
        worker.pid = pid
        worker.spawned = .now()
        if manifest.mode == .lambda {
            // Ready when its runtime first asks for an invocation (see `awaitReadiness`).
            logger.info("worker forked", metadata: metadata(worker, ["pid": .stringConvertible(pid)]))
            return
        }
        if manifest.readinessPath != nil {
            logger.info("worker forked", metadata: metadata(worker, ["pid": .stringConvertible(pid)]))
            awaitReadiness(workerID, worker, started: worker.started)
            return
        }
        markReady(workerID, worker, started: worker.started, extra: ["pid": .stringConvertible(pid)])
    }

    /// The template could not fork the worker: to the scaler, a worker that died before it was ready.
    private func workerNotForked(_ workerID: FunctionScaler.WorkerID, reason: String) {
        guard workers[workerID] != nil else { return }
        workerExited(workerID, .exited(127))
        lastError = "worker \(workerID.rawValue) not started: \(reason)"
    }

    private func workerExited(_ workerID: FunctionScaler.WorkerID, _ exit: ChildExit) {
        startupTimers.removeValue(forKey: workerID)?.cancel()
        outlierCounts[workerID] = nil
        failureReasons[workerID] = nil
        let lambdaServer = lambdaServers.removeValue(forKey: workerID)
        let initError = initErrors.removeValue(forKey: workerID)
        if scaler.worker(workerID)?.state == .starting {
            lastError = initError.map { "worker \(workerID.rawValue) init error: \($0)" }
                ?? "worker \(workerID.rawValue) exited before it was ready (\(exit))"
        }
        if let worker = workers.removeValue(forKey: workerID) {
            worker.markExited()
            logger.info("worker stopped", metadata: metadata(worker, ["exit": .string(exit.description)]))
            onWorkerGone(HostPort(host: "127.0.0.1", port: worker.port))
        }
        perform(scaler.workerExited(workerID, now: now))
        // After the scaler has let the worker go: the request it lost then finishes on a worker
        // the scaler no longer has, so no waiting request is handed to the dead one.
        lambdaServer?.workerExited()
        checkFinished()
    }

    private func checkFinished() {
        if scaler.isFinished && workers.isEmpty {
            template?.finish()
            revisionMetricsStorage?.unregister()
            revisionMetricsStorage = nil
            onFinished()
        }
    }

    private func metadata(_ worker: WorkerProcess, _ extra: Logger.Metadata) -> Logger.Metadata {
        var metadata: Logger.Metadata = [
            "function": .string(manifest.name), "revision": .string(revision),
            "worker": .stringConvertible(worker.number), "port": .stringConvertible(worker.port),
        ]
        metadata.merge(extra) { _, new in new }
        return metadata
    }

    private func updateGauges() {
        var counts: [FunctionScaler.WorkerState: Int] = [:]
        for worker in scaler.workers { counts[worker.state, default: 0] += 1 }
        metrics.setWorkers(starting: counts[.starting] ?? 0, ready: counts[.ready] ?? 0,
                           draining: (counts[.draining] ?? 0) + (counts[.stopping] ?? 0), queueLength: scaler.queueLength)
    }
}

extension ConfigDuration {
    var nanosecondsAmount: TimeAmount { .nanoseconds(nanoseconds) }
}
