import CPorticoSpawn
import Foundation
import Logging
import NIOCore
import NIOExtras
import NIOPosix
import PorticoConfig
import PorticoHTTP1
import PorticoProxy
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// One running worker of an http-mode function: its process, its port, its readiness probe and
/// its stop sequence. Everything happens on the function's home event loop.
final class WorkerProcess {
    /// How the worker's process is reached.
    enum Handle {
        /// Spawned by the gateway, under a supervisor of its own.
        case spawned(ChildProcess)
        /// Forked by its revision's template, which signals and reaps it.
        case forked(PythonTemplate)
    }

    let number: UInt64
    let port: Int
    let handle: Handle
    let started: NIODeadline
    /// A forked worker's pid is known once its template reports the fork.
    var pid: Int32?
    /// When the process was spawned (or forked), and then how its start went: for the
    /// cold-start metrics and the access-log line of the request that waited for it.
    var spawned: NIODeadline?
    var startPhases: (spawn: UInt64, startToReady: UInt64)?
    private let eventLoop: EventLoop
    /// The supervisor's connection from its readiness probe, for the first request.
    private var firstConnection: Int32?
    /// The function's logger, for what happens to a spawned worker.
    private var logger: Logger?
    private var probeTask: Scheduled<Void>?
    private var killTask: Scheduled<Void>?
    private(set) var exited = false

    init(number: UInt64, port: Int, handle: Handle, eventLoop: EventLoop) {
        self.number = number
        self.port = port
        self.handle = handle
        self.eventLoop = eventLoop
        self.started = .now()
        if case .spawned(let child) = handle { pid = child.pid }
    }

    /// Spawns the worker and starts forwarding its output lines to `logger`.
    /// A lambda-mode worker (`runtimeAPIPort` set) gets the Lambda environment instead of `PORT`.
    static func spawn(number: UInt64, manifest: FunctionManifest, revision: String, eventLoop: EventLoop,
                      logger: Logger, runtimeAPIPort: Int? = nil, onExit: @escaping @Sendable (ChildExit) -> Void) throws -> WorkerProcess {
        let port = try runtimeAPIPort ?? FreePort.pick()
        var environment = Self.environment(manifest: manifest, revision: revision, port: port,
                                           runtimeAPIPort: runtimeAPIPort, worker: number)
        var command = manifest.command
        if manifest.runtime == .python, let handler = manifest.handler {
            // `template: false`: the launcher imports and serves in one process.
            command = PythonLauncher.command(.serve, manifest.mode == .lambda ? .lambda : .wsgi, handler: handler)
            environment[PythonLauncher.environmentName] = PythonLauncher.source
        }
        // Ready when its port accepts: its supervisor finds that out (a readiness path or an h2c
        // check is an HTTP exchange, which stays the gateway's; a Lambda runtime asks for work).
        let reports = manifest.readinessPath == nil && manifest.protocol != .h2c && runtimeAPIPort == nil
            ? WorkerReadinessReports.on(eventLoop) : nil
        let spawned = try ChildProcess.spawn(
            command: command, directory: manifest.directory, environment: environment,
            memoryLimit: manifest.limits.memory, openFilesLimit: manifest.limits.openFiles,
            readiness: reports.map { ChildProcess.ReadinessReport(port: port, socket: $0.socket) })
        let worker = WorkerProcess(number: number, port: port, handle: .spawned(spawned.process), eventLoop: eventLoop)
        worker.readinessReports = reports
        worker.logger = logger
        worker.output = PendingOutput(stdout: spawned.stdout, stderr: spawned.stderr, logger: logger,
                                      prefix: "\(manifest.name)#\(number)")
        // Forwarding the output costs two channels (about 0.15 ms), which would be spent on the
        // core the worker is starting on, while the request waits for it: it starts once the
        // worker is ready or gone, or after `outputDelay` (a pipe holds 64 KiB until then).
        worker.outputTask = eventLoop.assumeIsolated().scheduleTask(in: Self.outputDelay) { [weak worker] in
            worker?.forwardOutput()
        }
        ChildReaper.shared.watch(spawned.process.pid, onExit: onExit)
        return worker
    }

    static let outputDelay: TimeAmount = .milliseconds(100)

    /// A spawned worker's output pipes, until they are handed to the log.
    struct PendingOutput {
        var stdout: Int32
        var stderr: Int32?
        var logger: Logger
        var prefix: String
    }

    /// Where this worker's supervisor reports readiness, if it does.
    private var readinessReports: WorkerReadinessReports?
    /// Who found the worker ready ("supervisor" or "gateway"), for its log line.
    private(set) var readyBy: String?
    private var output: PendingOutput?
    private var outputTask: Scheduled<Void>?

    deinit {
        if let firstConnection { close(firstConnection) }
        // Never forwarded (the worker was dropped before it started or exited): nothing reads them.
        if let output {
            close(output.stdout)
            if let stderr = output.stderr { close(stderr) }
        }
    }

    /// Starts logging the worker's output lines (once; a forked worker's go through its template).
    func forwardOutput() {
        outputTask?.cancel()
        outputTask = nil
        guard let output else { return }
        self.output = nil
        OutputLines.forward(fd: output.stdout, on: eventLoop, logger: output.logger, prefix: output.prefix, stream: "stdout")
        if let stderr = output.stderr {
            OutputLines.forward(fd: stderr, on: eventLoop, logger: output.logger, prefix: output.prefix, stream: "stderr")
        }
    }

    /// Forwards the output a moment after the worker became ready, once the request that
    /// waited for it has been answered.
    func forwardOutputSoon() {
        guard output != nil else { return }
        outputTask?.cancel()
        outputTask = eventLoop.assumeIsolated().scheduleTask(in: .milliseconds(2)) { [weak self] in
            self?.forwardOutput()
        }
    }

    /// What a worker gets: a few variables of the gateway's own, the manifest's, and Knative's
    /// runtime contract (`PORT`, `K_SERVICE`, `K_REVISION`, `K_CONFIGURATION`).
    /// A lambda-mode worker (`runtimeAPIPort` set) gets the Lambda environment instead of `PORT`.
    static func environment(manifest: FunctionManifest, revision: String, port: Int?, runtimeAPIPort: Int? = nil,
                            worker: UInt64 = 0) -> [String: String] {
        var environment = Self.inheritedEnvironment
        for variable in manifest.env { environment[variable.name] = variable.value }
        if let runtimeAPIPort {
            LambdaFunction.addEnvironment(to: &environment, manifest: manifest, runtimeAPIPort: runtimeAPIPort, worker: worker)
        } else if let port {
            environment["PORT"] = String(port)
        }
        environment["K_SERVICE"] = manifest.name
        environment["K_REVISION"] = revision
        environment["K_CONFIGURATION"] = manifest.name
        return environment
    }

    static let inheritedVariables: Set<String> = ["PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "USER", "SWIFT_BACKTRACE"]

    /// The gateway's own values of `inheritedVariables`, read once: Foundation builds a
    /// dictionary of the whole environment on every read, about a tenth of a millisecond on a
    /// cold start's path. The gateway never changes its environment after it starts.
    static let inheritedEnvironment: [String: String] = ProcessInfo.processInfo.environment.filter {
        inheritedVariables.contains($0.key)
    }

    /// Finds out when the worker is ready: its port accepts a connection, or `readinessPath`
    /// answers 2xx. A spawned worker's supervisor reports its port (`WorkerReadinessReports`);
    /// the gateway then probes only as a fallback, every 100 ms. Otherwise the gateway polls,
    /// fast at first (a native worker is up in a millisecond or two, and every interval here is
    /// added to its cold start: half of it on average), then slower. A refused connect on
    /// loopback costs a few microseconds (see `LoopbackPort`).
    func probeReadiness(path: String?, http2: Bool = false, onReady: @escaping () -> Void) {
        var attempt = 0
        let reported = path == nil && !http2 ? readinessReports : nil
        func ready(by: String) {
            probeTask?.cancel()
            readinessReports?.forget(port: port)
            readyBy = by
            onReady()
            // This start is over: the next one's supervisor can be forked now, off its path.
            SupervisorSpawner.shared.startIsOver()
        }
        func probe() {
            guard !exited else { return }
            attempt += 1
            ReadinessProbe.check(port: port, path: path, http2: http2, on: eventLoop).assumeIsolated().whenComplete { [self] result in
                // Ready already: the supervisor's report came while this probe was under way.
                guard !exited, readyBy == nil else { return }
                if case .success(true) = result {
                    // The supervisor, still probing, must not hold a connection for the gateway.
                    if reported != nil, case .spawned(let child) = handle { child.releaseHeldConnection() }
                    ready(by: "gateway")
                    return
                }
                // 2 ms at 200 us (a native worker is up by then), 30 ms more at 1 ms, 200 ms
                // more at 2 ms (an interpreter's start), then slower. A probe itself costs a few
                // microseconds, but it preempts the starting worker, which shares the gateway's
                // core when the gateway is pinned: at 200 us throughout, a Python worker's start
                // took 30 ms longer (measured; 300 probes).
                let delay: TimeAmount = reported != nil ? .milliseconds(100)
                    : attempt < 10 ? .microseconds(200) : attempt < 40 ? .milliseconds(1)
                    : attempt < 140 ? .milliseconds(2) : attempt < 330 ? .milliseconds(10) : .milliseconds(25)
                probeTask = eventLoop.assumeIsolated().scheduleTask(in: delay) { probe() }
            }
        }
        if let reported, let pid {
            reported.expect(port: port, supervisor: pid) { [self] heldConnection in
                guard !exited else { return }
                adoptProbeConnection(heldConnection)
                ready(by: "supervisor")
            }
            probeTask = eventLoop.assumeIsolated().scheduleTask(in: .milliseconds(100)) { probe() }
        } else {
            probe()
        }
    }

    /// Set once the kernel refused `pidfd_getfd` (before Linux 5.6, or a seccomp profile
    /// without it, such as container runtimes' defaults without CAP_SYS_PTRACE): the gateway
    /// then connects to a new worker itself, as it did before the hand-over.
    static let handOverRefused = Atomic<Bool>(false)

    /// Takes a copy of the connection the supervisor found the worker ready with (see
    /// supervise.c), when it can, and tells the supervisor to let go of its own.
    private func adoptProbeConnection(_ descriptor: Int32) {
        guard case .spawned(let child) = handle else { return }
        defer { child.releaseHeldConnection() }
        guard descriptor >= 0, let pid, !Self.handOverRefused.load(ordering: .relaxed) else { return }
        let copy = portico_take_descriptor(pid, descriptor)
        guard copy >= 0 else {
            let reason = errno
            if reason == EPERM || reason == ENOSYS || reason == EACCES,
               Self.handOverRefused.compareExchange(expected: false, desired: true, ordering: .relaxed).exchanged {
                logger?.info("the kernel refuses pidfd_getfd; the gateway opens each new worker's first connection itself",
                            metadata: ["error": .string(String(cString: strerror(reason)))])
            }
            return
        }
        // Had the supervisor given up waiting, the number could name another file by now.
        guard portico_peer_port(copy) == Int32(port) else {
            close(copy)
            return
        }
        firstConnection = copy
    }

    /// The connection for the first request, once (nil: connect as usual).
    func takeFirstConnection() -> Int32? {
        defer { firstConnection = nil }
        return firstConnection
    }

    /// Closes the first connection if no request took it.
    func dropFirstConnection() {
        if let fd = takeFirstConnection() { close(fd) }
    }

    /// SIGTERM to the process group, then, once `grace` has passed, SIGKILL to everything the
    /// worker started (its supervisor does that).
    func stop(grace: TimeAmount) {
        guard !exited else { return }
        probeTask?.cancel()
        readinessReports?.forget(port: port)
        switch handle {
        case .spawned(let child): child.signalGroup(SIGTERM)
        case .forked(let template): template.signal(worker: number, SIGTERM)
        }
        killTask = eventLoop.assumeIsolated().scheduleTask(in: grace) { [self] in
            if !exited { kill() }
        }
    }

    func kill() {
        guard !exited else { return }
        probeTask?.cancel()
        readinessReports?.forget(port: port)
        switch handle {
        case .spawned(let child): child.killAll()
        case .forked(let template): template.signal(worker: number, SIGKILL)
        }
    }

    /// The reaper saw the supervisor exit, which it does only after killing whatever the worker
    /// left; this releases the control pipe.
    func markExited() {
        exited = true
        dropFirstConnection()
        forwardOutput()
        probeTask?.cancel()
        readinessReports?.forget(port: port)
        killTask?.cancel()
        if case .spawned(let child) = handle { child.killAll() }
    }
}

/// Forwards a child's output to the log, one line at a time, prefixed with the worker.
enum OutputLines {
    static func forward(fd: Int32, on eventLoop: EventLoop, logger: Logger, prefix: String, stream: String) {
        NIOPipeBootstrap(group: eventLoop)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(LineBasedFrameDecoder()))
                    try channel.pipeline.syncOperations.addHandler(LogLineHandler(logger: logger, prefix: prefix, stream: stream))
                }
            }
            .takingOwnershipOfDescriptor(input: fd)
            .whenFailure { _ in close(fd) }
    }
}

private final class LogLineHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    let logger: Logger
    let prefix: String
    let stream: String

    init(logger: Logger, prefix: String, stream: String) {
        self.logger = logger
        self.prefix = prefix
        self.stream = stream
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var line = unwrapInboundIn(data)
        let text = line.readString(length: line.readableBytes) ?? ""
        logger.info("\(prefix) \(text)", metadata: ["stream": .string(stream)])
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }
}

/// Whether a port on 127.0.0.1 takes connections, asked with a few system calls.
///
/// A probe runs every few hundred microseconds while a worker starts, on the gateway's core,
/// which is often the worker's core too: a channel per probe (allocations, epoll registration)
/// took time from the start it waited for. On loopback a connect is refused or accepted within
/// microseconds, but a non-blocking one still says `EINPROGRESS`, so this one blocks, bounded
/// by a send timeout of 2 ms, which only a listener whose backlog is full (the SYN dropped)
/// could reach. nil means it could not tell, and the caller asks the slow way.
enum LoopbackPort {
    static func accepts(_ port: Int) -> Bool? {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bound = timeval(tv_sec: 0, tv_usec: 2000)
        guard setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &bound, socklen_t(MemoryLayout<timeval>.size)) == 0 else { return nil }
        if LoopbackAddress.call(connect, socket: fd, port: port) == 0 { return true }
        switch errno {
        case ECONNREFUSED: return false
        default: return nil
        }
    }
}

/// One readiness check against a worker on 127.0.0.1.
enum ReadinessProbe {
    static func check(port: Int, path: String?, http2: Bool = false, on eventLoop: EventLoop) -> EventLoopFuture<Bool> {
        if http2, let path {
            // An h2c worker (a gRPC server) may not speak HTTP/1.1 at all.
            return HTTP2ReadinessCheck.status(port: port, path: path, timeout: .seconds(1), on: eventLoop)
                .map { (200..<300).contains($0) }.recover { _ in false }
        }
        let bootstrap = ClientBootstrap(group: eventLoop).connectTimeout(.milliseconds(200))
        guard let path else {
            if let accepted = LoopbackPort.accepts(port) {
                return eventLoop.makeSucceededFuture(accepted)
            }
            return bootstrap.connect(resolvingOnlyNames: "127.0.0.1", port: port).flatMap { channel in
                channel.close().map { true }
            }.recover { _ in false }
        }
        let promise = eventLoop.makePromise(of: Bool.self)
        bootstrap
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ProbeHandler(promise: promise))
                }
            }
            .connect(resolvingOnlyNames: "127.0.0.1", port: port)
            .whenComplete { result in
                switch result {
                case .success(let channel):
                    // The path is the manifest's, checked when it was read: one fixed request.
                    var request = channel.allocator.buffer(capacity: 96 + path.utf8.count)
                    request.writeString("GET \(path) HTTP/1.1\r\nhost: 127.0.0.1:\(port)\r\nconnection: close\r\n\r\n")
                    channel.writeAndFlush(request, promise: nil)
                    channel.eventLoop.scheduleTask(in: .seconds(1)) { channel.close(promise: nil) }
                case .failure:
                    promise.succeed(false)
                }
            }
        return promise.futureResult
    }

    /// Reads the answer's status line with Portico's own response parser.
    private final class ProbeHandler: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        let promise: EventLoopPromise<Bool>
        var answered = false
        var parser = HTTP1ResponseParser()

        init(promise: EventLoopPromise<Bool>) {
            self.promise = promise
            parser.expectResponse(to: .other)
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            guard !answered else { return }
            parser.feed(unwrapInboundIn(data))
            while let event = parser.next() {
                switch event {
                case .head(let head) where !head.isInformational:
                    answered = true
                    promise.succeed(head.status >= 200 && head.status < 300)
                    context.close(promise: nil)
                    return
                case .error:
                    answered = true
                    promise.succeed(false)
                    context.close(promise: nil)
                    return
                default:
                    continue
                }
            }
        }

        func channelInactive(context: ChannelHandlerContext) {
            if !answered {
                answered = true
                promise.succeed(false)
            }
        }

        func errorCaught(context: ChannelHandlerContext, error: Error) {
            context.close(promise: nil)
        }
    }
}

/// A loopback port free right now, for a worker's `PORT` (the kernel picks; the socket closes).
enum FreePort {
    static func pick() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw SpawnError.pipe(errno) }
        defer { close(fd) }
        guard LoopbackAddress.call(bind, socket: fd, port: 0) == 0 else { throw SpawnError.pipe(errno) }
        return LoopbackAddress.boundPort(of: fd)
    }
}
