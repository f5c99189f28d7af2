import Dispatch
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import Prometheus
import PorticoConfig

/// The functions deployed from the functions folder, kept in step with it.
///
/// A reconcile reads the folder, compares each function's content hash (its revision) with
/// what runs, and deploys, redeploys or undeploys. It runs on a queue of its own: reading
/// folders and running build commands must never stall an event loop.
public final class FunctionRegistry: @unchecked Sendable {
    /// What the gateway routes to: the serving revision of every function, and what failed.
    public struct Published: Sendable {
        public var functions: [String: FunctionBackend]
        /// Functions whose folder is broken (bad manifest, failed build), with the reason.
        /// A broken function that had a good revision keeps serving that revision.
        public var failures: [String: String]
    }

    public let directory: String
    private let loops: [EventLoop]
    private let registry: PrometheusCollectorRegistry
    private let logger: Logger
    private let queue = DispatchQueue(label: "portico.functions")
    private let state = NIOLockedValueBox(Published(functions: [:], failures: [:]))
    private var draining: [ObjectIdentifier: FunctionBackend] = [:]  // queue only
    private var metrics: [String: FunctionMetrics] = [:]  // queue only
    private var watcher: FolderWatcher?
    /// Told about every change, so the gateway can rebuild its routes.
    public var onChange: @Sendable (Published) -> Void = { _ in }
    /// Told when a worker's port is gone, so every event loop can drop its pool to it.
    public var onEndpointGone: @Sendable (HostPort) -> Void = { _ in }

    public init(directory: String, loops: [EventLoop], registry: PrometheusCollectorRegistry, logger: Logger) {
        self.directory = directory
        self.loops = loops
        self.registry = registry
        self.logger = logger
    }

    public var published: Published { state.withLockedValue { $0 } }

    /// Reads the folder once and brings the running functions in line with it; returns when done.
    public func reconcileNow() {
        queue.sync { reconcile() }
    }

    /// Watches the folder (inotify where it works, polling as well) and reconciles on changes.
    public func startWatching() {
        let watcher = FolderWatcher(path: directory, queue: queue) { [weak self] in self?.reconcile() }
        watcher.start()
        self.watcher = watcher
    }

    // MARK: Reconcile (on `queue`)

    private func reconcile() {
        let scan = FunctionDirectory.scan(directory)
        var current = state.withLockedValue { $0.functions }
        var failures: [String: String] = [:]
        var changed = false

        for (name, error) in scan.failures {
            failures[name] = error.description
            logger.error("function not deployed: bad manifest", metadata: ["function": .string(name), "error": .string(error.description)])
        }

        for manifest in scan.manifests {
            let revision: String
            do {
                revision = manifest.name + "-" + (try FunctionRevision.hash(directory: manifest.directory))
            } catch {
                failures[manifest.name] = "cannot read the folder: \(error)"
                continue
            }
            if current[manifest.name]?.revision == revision { continue }
            if let build = manifest.build {
                if let failure = BuildRunner.run(build, in: manifest.directory, function: manifest.name, logger: logger) {
                    failures[manifest.name] = failure
                    logger.error("function build failed; the previous revision keeps serving",
                                 metadata: ["function": .string(manifest.name), "error": .string(failure)])
                    continue
                }
            }
            let backend = makeBackend(manifest: manifest, revision: revision)
            if let old = current[manifest.name] {
                logger.info("redeploying function", metadata: ["function": .string(manifest.name),
                                                              "from": .string(old.revision), "to": .string(revision)])
                retire(old, successor: backend)
            } else {
                logger.info("deploying function", metadata: ["function": .string(manifest.name), "revision": .string(revision)])
            }
            current[manifest.name] = backend
            changed = true
        }

        let present = Set(scan.manifests.map(\.name)).union(scan.failures.keys)
        for (name, old) in current where !present.contains(name) {
            logger.info("undeploying function", metadata: ["function": .string(name), "revision": .string(old.revision)])
            current[name] = nil
            retire(old, successor: nil)
            changed = true
        }

        let previousFailures = state.withLockedValue { $0.failures }
        let published = Published(functions: current, failures: failures)
        state.withLockedValue { $0 = published }
        if changed || previousFailures != failures {
            onChange(published)
        }
    }

    private func makeBackend(manifest: FunctionManifest, revision: String) -> FunctionBackend {
        let functionMetrics = metrics[manifest.name] ?? FunctionMetrics(function: manifest.name, registry: registry)
        metrics[manifest.name] = functionMetrics
        // A function's home loop is fixed by its name, so its revisions share a loop.
        let home = loops[Int(UInt(bitPattern: manifest.name.hashValue) % UInt(loops.count))]
        switch manifest.mode {
        case .http:
            let instance = FunctionInstance(manifest: manifest, revision: revision, homeLoop: home, logger: logger,
                                            metrics: functionMetrics)
            instance.onWorkerGone = { [weak self] endpoint in self?.onEndpointGone(endpoint) }
            instance.start()
            return .http(instance)
        case .exec:
            return .exec(ExecFunction(manifest: manifest, revision: revision, homeLoop: home, logger: logger))
        }
    }

    /// Takes `old` out of service: its waiting requests move to `successor` (or get 503 when
    /// the function is gone), in-flight requests finish, then its workers stop.
    private func retire(_ old: FunctionBackend, successor: FunctionBackend?) {
        guard case .http(let instance) = old else { return }
        let key = ObjectIdentifier(instance)
        draining[key] = old
        if case .http(let next) = successor {
            instance.homeLoop.execute {
                instance.successor = next
                instance.requeue = { waiters in next.adopt(waiters) }
            }
        }
        instance.onFinished = { [weak self] in
            guard let self else { return }
            self.queue.async { self.draining[key] = nil }
        }
        instance.drain()
    }

    /// Stops every worker: drain, then SIGTERM, then SIGKILL after each function's grace period.
    public func shutdown() async {
        watcher?.stop()
        let all = queue.sync { () -> [FunctionBackend] in
            let live = Array(state.withLockedValue { $0.functions.values }) + Array(draining.values)
            state.withLockedValue { $0.functions = [:] }
            return live
        }
        var waits: [EventLoopFuture<Void>] = []
        for backend in all {
            guard case .http(let instance) = backend else { continue }
            let promise = instance.homeLoop.makePromise(of: Void.self)
            instance.homeLoop.execute {
                instance.onFinished = { promise.succeed() }
                instance.drain()
            }
            // A worker that ignores SIGTERM is killed after its grace period; allow for that.
            let limit = instance.manifest.gracePeriod.nanosecondsAmount + .seconds(1)
            instance.homeLoop.scheduleTask(in: limit) { promise.succeed() }
            waits.append(promise.futureResult)
        }
        for wait in waits { try? await wait.get() }
    }
}

/// A deployed function as the proxy sees it.
public enum FunctionBackend: Sendable {
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
}

/// Runs a function's `build` command to completion, logging its output.
enum BuildRunner {
    /// Returns nil on success, or why it failed.
    static func run(_ command: [String], in directory: String, function: String, logger: Logger) -> String? {
        let environment = ProcessInfo.processInfo.environment.filter { WorkerProcess.inheritedVariables.contains($0.key) }
        let spawned: ChildProcess.Spawned
        do {
            // One pipe for both streams: reading two pipes in turn could deadlock on a full one.
            spawned = try ChildProcess.spawn(command: command, directory: directory, environment: environment, mergeStderr: true)
        } catch {
            return "build: \(error)"
        }
        let exited = DispatchSemaphore(value: 0)
        let outcome = NIOLockedValueBox<ChildExit?>(nil)
        ChildReaper.shared.watch(spawned.process.pid) { exit in
            outcome.withLockedValue { $0 = exit }
            exited.signal()
        }
        let output = readAll(spawned.stdout)
        exited.wait()
        for line in output.split(separator: "\n") {
            logger.info("\(function) build: \(line)")
        }
        let exit = outcome.withLockedValue { $0 }
        return exit == .exited(0) ? nil : "build \(command.joined(separator: " ")) failed (\(exit?.description ?? "?"))"
    }

    private static func readAll(_ fd: Int32) -> String {
        let handle = FileHandle(fileDescriptor: fd, closeOnDealloc: true)
        return String(decoding: handle.readDataToEndOfFile(), as: UTF8.self)
    }
}
