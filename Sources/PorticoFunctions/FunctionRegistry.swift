import CPorticoSpawn
import Dispatch
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import Prometheus
import PorticoConfig
import PorticoCore
import PorticoProxy

/// The functions deployed from the functions folder, kept in step with it.
///
/// A reconcile reads the folder, compares each function's content hash with what runs, and
/// deploys, redeploys or undeploys. It runs on a queue of its own: reading folders and running
/// build commands must never stall an event loop.
///
/// A new revision is a private copy of the folder (`RevisionCopies`), built there. When it
/// replaces a serving revision, it first starts a worker and takes traffic only once that
/// worker is ready (as Knative routes to a revision only once it is ready); a revision that
/// cannot become ready, or does not build, is reported and the serving one stays. A folder
/// that failed is tried again when its content changes, or after a back-off (`DeployAttempts`).
///
/// `@unchecked Sendable`: the mutable fields are touched only on `queue` (a serial queue the
/// compiler cannot see), `state` is locked, and the rest is immutable.
public final class FunctionRegistry: FunctionSource, @unchecked Sendable {
    /// What the gateway routes to: the serving revision of every function, and what failed.
    public struct Published: Sendable {
        public var functions: [String: FunctionBackend]
        /// Functions whose folder is broken (bad manifest, failed build, a revision that cannot
        /// become ready), with the reason. A broken function that had a good revision keeps
        /// serving that revision.
        public var failures: [String: String]
    }

    /// A revision and the folder content it was made from.
    private struct Deployment {
        var backend: FunctionBackend
        /// The hash of the function's folder when the revision was made: what the folder is
        /// compared with to see whether it changed.
        var sourceHash: String
        /// The revision's private copy of the folder.
        var copy: String
    }

    public let directory: String
    private let loops: [EventLoop]
    private let registry: PrometheusCollectorRegistry
    private let logger: Logger
    private let queue = DispatchQueue(label: "portico.functions")
    private let state = NIOLockedValueBox(Published(functions: [:], failures: [:]))
    // Queue only, from here on.
    private var deployed: [String: Deployment] = [:]
    /// New revisions warming up before they take over from a serving one.
    private var pending: [String: Deployment] = [:]
    private var attempts = DeployAttempts() {
        didSet { recordFailures(from: oldValue) }
    }
    /// The last error logged per function, so a failure is logged when it appears, not on every poll.
    private var loggedFailures: [String: String] = [:]
    private var draining: [ObjectIdentifier: FunctionBackend] = [:]
    private var metrics: [String: FunctionMetrics] = [:]
    private lazy var copies = RevisionCopies(functionsDirectory: directory, logger: logger)
    private var watcher: FolderWatcher?
    /// The first reconcile (the gateway's start) is over: what appears later was deployed.
    private var hasScanned = false
    /// What was last read from each function folder, kept while the folder's stat signature holds.
    private var folders = FolderChangeTracker<FolderReading>()
    private let lookMetrics: FolderLookMetrics
    /// Told about every change, so the gateway can rebuild its routes.
    private let onChange: @Sendable (Published) -> Void
    /// Told when a worker's port is gone, so every event loop can drop its pool to it.
    private let onEndpointGone: @Sendable (HostPort) -> Void

    public init(directory: String, loops: [EventLoop], registry: PrometheusCollectorRegistry, logger: Logger,
                onChange: @escaping @Sendable (Published) -> Void = { _ in },
                onEndpointGone: @escaping @Sendable (HostPort) -> Void = { _ in }) {
        self.directory = directory
        self.loops = loops
        self.registry = registry
        self.logger = logger
        self.onChange = onChange
        self.onEndpointGone = onEndpointGone
        self.lookMetrics = FolderLookMetrics(registry: registry)
    }

    /// A registry that reports to a gateway: what `portico serve` wires in.
    public convenience init(directory: String, hooks: FunctionSourceHooks) {
        self.init(directory: directory, loops: hooks.eventLoops, registry: hooks.metricsRegistry, logger: hooks.logger,
                  onChange: { published in
                      hooks.publish(published.functions.mapValues { $0 as any DeployedFunction }, published.failures)
                  },
                  onEndpointGone: hooks.endpointGone)
    }

    public var published: Published { state.withLockedValue { $0 } }

    /// Reads the folder once and brings the running functions in line with it; returns when
    /// done (builds included) without holding a thread meanwhile.
    public func deployNow() async {
        await onQueue { $0.reconcile(.everything) }
    }

    /// Watches the folder (inotify where it works, polling as well) and reconciles on changes.
    public func startWatching() {
        // Only a serving gateway: a process that runs children of its own must not sweep them.
        ChildReaper.shared.adoptOrphans()
        queue.async { [self] in
            guard watcher == nil else { return }
            let watcher = FolderWatcher(path: directory, queue: queue) { [weak self] change in self?.reconcile(change) }
            watcher.start()
            self.watcher = watcher
        }
    }

    /// Runs `body` on `queue` and returns its result, waiting without blocking a thread (a
    /// reconcile in progress may be running a build for minutes).
    private func onQueue<Result: Sendable>(_ body: @escaping @Sendable (FunctionRegistry) -> Result) async -> Result {
        await withCheckedContinuation { continuation in
            queue.async { continuation.resume(returning: body(self)) }
        }
    }

    private var now: UInt64 { DispatchTime.now().uptimeNanoseconds }

    // MARK: Reconcile (on `queue`)

    /// Brings the deployed functions in line with the folder. `change` says which function
    /// folders to look at; the others keep what was last read from them. A folder looked at is
    /// read again (manifest loaded, content hashed) only when its stat signature changed.
    private func reconcile(_ change: FolderWatcher.Change) {
        let scan = look(change)
        var failures: [String: String] = [:]
        var changed = false

        for (name, error) in scan.failures {
            failures[name] = error.description
            // A bad change to a function: the serving revision stays, a half-started one goes.
            abandonPending(name)
        }

        for name in scan.functions {
            let sourceHash: String
            switch scan.hashes[name] {
            case .success(let hash)?:
                sourceHash = hash
            case .failure(let reason)?:
                failures[name] = reason.description
                continue
            case nil:
                continue
            }
            if deployed[name]?.sourceHash == sourceHash {
                // Back to what serves (a bad change was undone): a revision warming up for the
                // change is no longer wanted.
                abandonPending(name)
                attempts.forget(name)
                continue
            }
            if pending[name]?.sourceHash == sourceHash { continue }
            if case .skip(let failure) = attempts.decide(name, fingerprint: sourceHash, now: now) {
                failures[name] = failure.reason
                continue
            }
            abandonPending(name)
            switch makeRevision(name, sourceHash: sourceHash) {
            case .failure(let reason):
                failures[name] = reason.description
            case .success(let deployment):
                if let old = deployed[name], case .http(let instance) = deployment.backend {
                    // The serving revision keeps all traffic until the new one has a ready worker.
                    pending[name] = deployment
                    logger.info("starting a new revision; it takes over once a worker is ready",
                                metadata: ["function": .string(name), "from": .string(old.backend.revision),
                                           "to": .string(deployment.backend.revision)])
                    instance.warmUp { [weak self] failure in
                        guard let self else { return }
                        self.queue.async { self.warmUpEnded(name, instance, failure: failure) }
                    }
                } else {
                    install(deployment, name: name)
                    changed = true
                    if hasScanned, case .http(let instance) = deployment.backend {
                        // A function added while the gateway runs (`portico deploy`) starts one
                        // worker now, as a Knative revision starts with one pod (initial scale 1):
                        // its deploy is ready once that worker is, and a failing start shows up
                        // then, not at the first request. The worker idles out like any other.
                        // Functions found at startup stay cold, so a thousand cost nothing.
                        instance.warmUp { _ in }
                    }
                }
            }
        }

        let present = Set(scan.functions).union(scan.failures.keys)
        for name in Array(deployed.keys) + Array(pending.keys) where !present.contains(name) {
            abandonPending(name)
            attempts.forget(name)
            if let old = deployed.removeValue(forKey: name) {
                logger.info("undeploying function", metadata: ["function": .string(name), "revision": .string(old.backend.revision)])
                retire(old, successor: nil)
                changed = true
            }
        }
        publish(failures: failures, changed: changed, badManifests: Set(scan.failures.keys))
        hasScanned = true
        if lookMetrics.hashedSinceTrim > 0 {
            // Reading folders (YAML, hashing), copying them and compiling the routes leave freed
            // heap that glibc keeps; a thousand functions deployed at start would otherwise hold
            // megabytes of it for the gateway's life.
            lookMetrics.hashedSinceTrim = 0
            portico_trim_heap()
        }
    }

    /// What a look at the functions folder found: the functions (by name, sorted), the folders
    /// that are not valid functions, and each function's content hash.
    private struct Scan {
        var functions: [String] = []
        var failures: [String: ConfigError] = [:]
        var hashes: [String: Result<String, ReasonText>] = [:]
    }

    /// Lists the functions folder, and walks (with `stat` alone) the function folders `change`
    /// names, or all of them; reads a folder again only when its signature changed.
    private func look(_ change: FolderWatcher.Change) -> Scan {
        // Counted once done, so a reader of the metrics sees a look with its reads.
        defer { lookMetrics.count(change) }
        var scan = Scan()
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: directory) else {
            folders.keepOnly([])
            return scan
        }
        var present = Set<String>()
        for name in entries.sorted() where !name.hasPrefix(".") {
            let folder = folderPath(name)
            let reading: FolderReading
            if case .folders(let names) = change, !names.contains(name), let last = folders.lastReading(of: name) {
                reading = last
            } else if let walk = FolderSignatureReader.read(folder) {
                switch folders.check(name, signature: walk.signature) {
                case .unchanged(let last):
                    reading = last
                case .read:
                    reading = readFolder(folder, hasManifest: walk.hasManifest)
                    folders.record(name, signature: walk.signature, reading: reading)
                }
            } else {
                var isDirectory: ObjCBool = false
                guard FileManager.default.fileExists(atPath: folder, isDirectory: &isDirectory), isDirectory.boolValue else {
                    continue  // a file beside the functions, or gone
                }
                // A folder that cannot be walked is read every time, which says why it fails.
                reading = readFolder(folder, hasManifest: FileManager.default.fileExists(
                    atPath: FunctionManifestLoader.manifestPath(in: folder)))
                folders.record(name, signature: nil, reading: reading)
            }
            present.insert(name)
            switch reading.manifest {
            case .valid:
                scan.functions.append(name)
                if let hash = reading.sourceHash { scan.hashes[name] = hash }
            case .invalid(let error):
                scan.failures[name] = error
            case .none:
                continue  // no function.yaml: not a function
            }
        }
        folders.keepOnly(present)
        return scan
    }

    /// Loads a function folder's manifest and hashes its content (`FunctionDirectory.scan`'s
    /// rules for one folder).
    private func readFolder(_ folder: String, hasManifest: Bool) -> FolderReading {
        guard hasManifest else { return FolderReading(manifest: .none, sourceHash: nil) }
        do {
            // Checked, not kept: a revision runs from its copy's manifest, read when it is made.
            _ = try FunctionManifestLoader.load(directory: folder)
        } catch let error as ConfigError {
            return FolderReading(manifest: .invalid(error), sourceHash: nil)
        } catch {
            // `load` throws only `ConfigError`; this keeps the promise of a total scan if that changes.
            return FolderReading(manifest: .invalid(ConfigError([ConfigDiagnostic(
                location: SourceLocation(file: FunctionManifestLoader.manifestPath(in: folder), line: 1, column: 1),
                key: "(file)", message: "\(error)")])), sourceHash: nil)
        }
        lookMetrics.hashed()
        do {
            return FolderReading(manifest: .valid, sourceHash: .success(try FunctionRevision.hash(directory: folder)))
        } catch {
            return FolderReading(manifest: .valid, sourceHash: .failure(ReasonText("cannot read the folder: \(error)")))
        }
    }

    private func folderPath(_ name: String) -> String {
        directory.hasSuffix("/") ? directory + name : directory + "/" + name
    }

    /// Copies the folder, reads the copy's manifest, builds there. Failures are remembered, so
    /// the same content is not built again on every poll.
    private func makeRevision(_ name: String, sourceHash: String) -> Result<Deployment, ReasonText> {
        let fail = { (reason: String) -> Result<Deployment, ReasonText> in
            self.attempts.failed(name, fingerprint: sourceHash, reason: reason, now: self.now)
            return .failure(ReasonText(reason))
        }
        let copy: String
        do {
            copy = try copies.copy(folderPath(name), name: name)
        } catch {
            return fail("cannot copy the folder for a new revision: \(error)")
        }
        let revision: String
        let runnable: FunctionManifest
        do {
            // The copy's own content names the revision: it is what runs, even if the folder
            // changed while it was being copied (the next poll sees that change).
            revision = name + "-" + (try FunctionRevision.hash(directory: copy))
            runnable = try FunctionManifestLoader.load(directory: copy, name: name)
        } catch {
            copies.remove(copy)
            // A manifest that changed for the worse during the copy: the next scan reports it.
            return .failure(ReasonText("\(error)"))
        }
        if let build = runnable.build {
            if let failure = BuildRunner.run(build, in: copy, function: name, timeout: runnable.buildTimeout, logger: logger) {
                copies.remove(copy)
                return fail(failure + (deployed[name] != nil ? "; the previous revision keeps serving" : ""))
            }
        }
        let backend = makeBackend(manifest: runnable, revision: revision)
        return .success(Deployment(backend: backend, sourceHash: sourceHash, copy: copy))
    }

    /// Makes `deployment` the serving revision of `name`, retiring the one it replaces.
    private func install(_ deployment: Deployment, name: String) {
        attempts.forget(name)
        if let old = deployed[name] {
            logger.info("redeploying function", metadata: ["function": .string(name),
                                                          "from": .string(old.backend.revision), "to": .string(deployment.backend.revision)])
            retire(old, successor: deployment.backend)
        } else {
            logger.info("deploying function", metadata: ["function": .string(name), "revision": .string(deployment.backend.revision)])
        }
        deployed[name] = deployment
    }

    private func warmUpEnded(_ name: String, _ instance: FunctionInstance, failure: String?) {
        guard let deployment = pending[name], case .http(let warming) = deployment.backend, warming === instance else { return }
        pending[name] = nil
        var failures = state.withLockedValue { $0.failures }
        if let failure {
            let reason = "revision \(instance.revision) did not become ready: \(failure)"
                + (deployed[name].map { "; revision \($0.backend.revision) keeps serving" } ?? "")
            attempts.failed(name, fingerprint: deployment.sourceHash, reason: reason, now: now)
            failures[name] = reason
            retire(deployment, successor: nil)
            publish(failures: failures, changed: false)
        } else {
            failures[name] = nil
            install(deployment, name: name)
            publish(failures: failures, changed: true)
        }
    }

    /// Drops a revision that was warming up for a folder content that is no longer there.
    private func abandonPending(_ name: String) {
        guard let deployment = pending.removeValue(forKey: name) else { return }
        logger.info("abandoning a revision that was starting; its folder changed",
                    metadata: ["function": .string(name), "revision": .string(deployment.backend.revision)])
        retire(deployment, successor: nil)
    }

    /// Keeps `portico check`'s view of failed deploys in step with `attempts`.
    private func recordFailures(from old: DeployAttempts) {
        guard old.failures != attempts.failures else { return }
        for name in Set(old.failures.keys).union(attempts.failures.keys) where old.failures[name] != attempts.failures[name] {
            if let failure = attempts.failures[name] {
                FunctionDeployFailure(contentHash: failure.fingerprint, reason: failure.reason)
                    .write(functionsDirectory: directory, name: name)
            } else {
                FunctionDeployFailure.remove(functionsDirectory: directory, name: name)
            }
        }
    }

    private func publish(failures: [String: String], changed: Bool, badManifests: Set<String> = []) {
        for (name, failure) in failures where loggedFailures[name] != failure {
            logger.error(badManifests.contains(name) ? "function not deployed: bad manifest" : "function not deployed",
                         metadata: ["function": .string(name), "error": .string(failure)])
        }
        loggedFailures = failures
        let previousFailures = state.withLockedValue { $0.failures }
        // Most looks change nothing: no new map of a thousand functions for them.
        guard changed || previousFailures != failures else { return }
        let published = Published(functions: deployed.mapValues(\.backend), failures: failures)
        state.withLockedValue { $0 = published }
        onChange(published)
    }

    private func makeBackend(manifest: FunctionManifest, revision: String) -> FunctionBackend {
        let functionMetrics = metrics[manifest.name] ?? FunctionMetrics(function: manifest.name, registry: registry)
        metrics[manifest.name] = functionMetrics
        // A function's home loop is fixed by its name, so its revisions share a loop.
        let home = loops[Int(UInt(bitPattern: manifest.name.hashValue) % UInt(loops.count))]
        switch manifest.mode {
        case .http, .lambda:
            let onEndpointGone = self.onEndpointGone
            let instance = FunctionInstance(manifest: manifest, revision: revision, homeLoop: home, logger: logger,
                                            metrics: functionMetrics, onWorkerGone: onEndpointGone)
            instance.start()
            return .http(instance)
        case .exec:
            return .exec(ExecFunction(manifest: manifest, revision: revision, homeLoop: home, logger: logger, metrics: functionMetrics))
        }
    }

    /// Takes `old` out of service: its waiting requests move to `successor` (or get 503 when
    /// the function is gone), in-flight requests finish, then its workers stop and its copy of
    /// the folder is removed.
    private func retire(_ old: Deployment, successor: FunctionBackend?) {
        let copy = old.copy
        guard case .http(let instance) = old.backend else {
            // An exec request runs for at most requestTimeout (then it is killed), so its copy
            // is unused after that.
            let delay = DispatchTimeInterval.nanoseconds(Int(clamping: old.backend.manifest.requestTimeout.nanoseconds + 5_000_000_000))
            queue.asyncAfter(deadline: .now() + delay) { [weak self] in self?.copies.remove(copy) }
            return
        }
        let key = ObjectIdentifier(instance)
        draining[key] = old.backend
        // Waiting requests move over only to workers of the same kind: a proxied request cannot
        // use a Lambda runtime's port, nor an invocation an HTTP worker. Across a change of
        // `mode` they get 503 (try again), as when the function is gone.
        if case .http(let next) = successor, (next.manifest.mode == .lambda) == (instance.manifest.mode == .lambda) {
            instance.homeLoop.execute {
                instance.successor = next
                instance.requeue = { waiters in next.adopt(waiters) }
            }
        }
        // The callback is handed to the instance on its home loop (this is the registry's
        // queue): it used to be assigned here, racing the home loop's read of it.
        instance.drain { [weak self] in
            guard let self else { return }
            self.queue.async {
                self.draining[key] = nil
                self.copies.remove(copy)
            }
        }
    }

    /// Stops every worker: drain, then SIGTERM, then SIGKILL after each function's grace period.
    public func shutdown() async {
        let all = await onQueue { registry -> [FunctionBackend] in
            registry.watcher?.stopOnQueue()
            registry.watcher = nil
            let live = registry.deployed.values.map(\.backend) + registry.pending.values.map(\.backend)
                + Array(registry.draining.values)
            registry.deployed = [:]
            registry.pending = [:]
            registry.state.withLockedValue { $0.functions = [:] }
            return live
        }
        var waits: [EventLoopFuture<Void>] = []
        for backend in all {
            guard case .http(let instance) = backend else { continue }
            let promise = instance.homeLoop.makePromise(of: Void.self)
            instance.drain { promise.succeed() }
            // A worker that ignores SIGTERM is killed after its grace period; allow for that.
            let limit = instance.manifest.gracePeriod.nanosecondsAmount + .seconds(1)
            instance.homeLoop.scheduleTask(in: limit) { promise.succeed() }
            waits.append(promise.futureResult)
        }
        for wait in waits { try? await wait.get() }
    }
}

/// What was read from a function folder: whether its manifest is valid (and why not) and, for
/// a valid one, the folder's content hash.
struct FolderReading: Sendable {
    enum Manifest: Sendable {
        /// No `function.yaml`: the folder is not a function.
        case none
        case valid
        case invalid(ConfigError)
    }

    var manifest: Manifest
    var sourceHash: Result<String, ReasonText>?
}

/// Why a revision could not be made, as an `Error` for `Result`.
struct ReasonText: Error, CustomStringConvertible, Sendable {
    var description: String
    init(_ description: String) { self.description = description }
}

/// A deployed function: an http-mode revision with its workers, or an exec-mode one.
public enum FunctionBackend: DeployedFunction {
    /// http and lambda mode: long-running workers under a scaler.
    case http(FunctionInstance)
    case exec(ExecFunction)

    public var revision: String {
        switch self {
        case .http(let instance): return instance.revision
        case .exec(let function): return function.revision
        }
    }

    public var manifest: FunctionManifest {
        switch self {
        case .http(let instance): return instance.manifest
        case .exec(let function): return function.manifest
        }
    }

    public var serving: FunctionServing {
        switch self {
        case .http(let instance) where instance.manifest.mode == .lambda: return .responder(LambdaFunction(instance: instance))
        case .http(let instance): return .backend(instance)
        case .exec(let function): return .responder(function)
        }
    }

    public func status() -> EventLoopFuture<FunctionStatus> {
        switch self {
        case .http(let instance):
            return instance.status()
        case .exec(let function):
            return function.status()
        }
    }
}
