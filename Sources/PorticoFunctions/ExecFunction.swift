import Foundation
import Logging
import NIOCore
import NIOPosix
import PorticoConfig
import PorticoProxy

/// An exec-mode function: one process per request (CGI-like), for shell-script functions.
///
/// At most `maxWorkers` processes run at once; up to `queueLimit` requests wait for a slot.
/// The slot count lives on the home loop; the process itself runs on the request's loop.
///
/// `@unchecked Sendable`: `running` and `waiting` are touched only on `homeLoop` (every
/// access is inside `homeLoop.execute`), which the compiler cannot see; the rest is immutable.
public final class ExecFunction: LocalResponder, @unchecked Sendable {
    public let manifest: FunctionManifest
    public let revision: String
    let homeLoop: EventLoop
    let logger: Logger
    let metrics: FunctionMetrics?
    // Home loop only, from here on.
    private var running = 0
    private var waiting: [(start: () -> Void, bodyBytes: Int)] = []
    /// Bytes of the whole bodies `waiting` holds, bounded by `queueBodyLimit`.
    private var waitingBodyBytes = 0
    /// The processes running now, by slot, for `/functions`.
    private var processes: [UInt64: (pid: Int32, started: NIODeadline)] = [:]
    private var nextSlot: UInt64 = 1

    /// Output past this is cut off and the request fails: an exec response is held whole.
    static let maxOutput = 16 * 1024 * 1024

    init(manifest: FunctionManifest, revision: String, homeLoop: EventLoop, logger: Logger, metrics: FunctionMetrics? = nil) {
        self.manifest = manifest
        self.revision = revision
        self.homeLoop = homeLoop
        self.logger = logger
        self.metrics = metrics
    }

    /// Runs the function for one request: its stdout is the answer. The future completes on `loop`.
    public func respond(to request: ExecRequest, on loop: EventLoop) -> EventLoopFuture<ExecOutcome> {
        let promise = loop.makePromise(of: ExecOutcome.self)
        homeLoop.execute {
            let slot = self.nextSlot
            self.nextSlot += 1
            let start = {
                loop.execute {
                    self.spawn(request, on: loop, slot: slot).whenComplete { result in
                        self.homeLoop.execute { self.slotFreed(slot) }
                        promise.succeed((try? result.get()) ?? .failed("exec failed"))
                    }
                }
            }
            let bodyBytes = request.body.readableBytes
            if self.running < self.manifest.maxWorkers {
                self.running += 1
                start()
            } else if self.waiting.count < self.manifest.queueLimit,
                      self.waitingBodyBytes + bodyBytes <= self.manifest.queueBodyLimit {
                // A waiting exec request holds its whole body: `queueBodyLimit` bounds them all.
                self.waiting.append((start, bodyBytes))
                self.waitingBodyBytes += bodyBytes
            } else {
                promise.succeed(.queueFull)
            }
            self.updateGauges()
        }
        return promise.futureResult
    }

    private func slotFreed(_ slot: UInt64) {
        processes[slot] = nil
        if waiting.isEmpty {
            running -= 1
        } else {
            let next = waiting.removeFirst()
            waitingBodyBytes -= next.bodyBytes
            next.start()
        }
        updateGauges()
    }

    private func processStarted(_ slot: UInt64, pid: Int32) {
        processes[slot] = (pid, .now())
    }

    private func updateGauges() {
        metrics?.setRunning(running, waiting: waiting.count)
    }

    /// A snapshot for the admin API: the processes running now, and the requests waiting for one.
    func status() -> EventLoopFuture<FunctionStatus> {
        homeLoop.submit {
            let now = NIODeadline.now().uptimeNanoseconds
            return FunctionStatus(
                name: self.manifest.name, revision: self.revision, mode: "exec", state: self.running > 0 ? "active" : "idle",
                queueLength: self.waiting.count, lastError: nil, ready: true, queueBodyBytes: self.waitingBodyBytes,
                workers: self.processes.sorted { $0.key < $1.key }.map { slot, process in
                    FunctionStatus.Worker(id: slot, pid: Int(process.pid), port: nil, state: "running", inFlight: 1,
                                          ageSeconds: Double(now - process.started.uptimeNanoseconds) / 1e9)
                })
        }
    }

    private func spawn(_ request: ExecRequest, on loop: EventLoop, slot: UInt64) -> EventLoopFuture<ExecOutcome> {
        var environment = WorkerProcess.inheritedEnvironment
        for variable in manifest.env { environment[variable.name] = variable.value }
        environment["K_SERVICE"] = manifest.name
        environment["K_REVISION"] = revision
        environment["K_CONFIGURATION"] = manifest.name
        environment["GATEWAY_INTERFACE"] = "CGI/1.1"
        environment["REQUEST_METHOD"] = request.method
        environment["PATH_INFO"] = request.path
        environment["QUERY_STRING"] = request.query
        environment["REMOTE_ADDR"] = request.remoteAddress
        environment["CONTENT_LENGTH"] = String(request.body.readableBytes)
        for (name, value) in request.headers {
            let key = name.uppercased().replacingOccurrences(of: "-", with: "_")
            if key == "CONTENT_TYPE" {
                environment["CONTENT_TYPE"] = value
            } else if key == "PROXY" {
                // A client's `Proxy:` would become HTTP_PROXY, which many HTTP clients a script
                // uses read as their outbound proxy ("httpoxy"): it is not passed on.
                continue
            } else if key != "CONTENT_LENGTH" {
                environment["HTTP_" + key] = value
            }
        }

        let spawned: ChildProcess.Spawned
        do {
            spawned = try ChildProcess.spawn(command: manifest.command, directory: manifest.directory, environment: environment,
                                             withStdin: true, memoryLimit: manifest.limits.memory,
                                             openFilesLimit: manifest.limits.openFiles)
        } catch {
            logger.error("exec function cannot start", metadata: ["function": .string(manifest.name), "error": .string("\(error)")])
            return loop.makeSucceededFuture(.failed("\(error)"))
        }
        let process = spawned.process
        homeLoop.execute { self.processStarted(slot, pid: process.pid) }
        let exitPromise = loop.makePromise(of: ChildExit.self)
        ChildReaper.shared.watch(process.pid) { exit in exitPromise.succeed(exit) }
        if let stderr = spawned.stderr {
            OutputLines.forward(fd: stderr, on: loop, logger: logger, prefix: "\(manifest.name)[\(process.pid)]", stream: "stderr")
        }
        let collector = OutputCollector(limit: Self.maxOutput, eventLoop: loop)
        let timeout = loop.scheduleTask(in: manifest.requestTimeout.nanosecondsAmount) {
            collector.timedOut = true
            process.killAll()
        }
        let body = request.body
        return NIOPipeBootstrap(group: loop)
            .channelOption(.allowRemoteHalfClosure, value: true)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(collector) }
            }
            .takingOwnershipOfDescriptors(input: spawned.stdout, output: spawned.stdin!)
            .flatMap { channel in
                // The body goes in whole, then stdin closes so the script sees end-of-file.
                channel.writeAndFlush(body).flatMap { channel.close(mode: .output) }.whenComplete { _ in }
                return collector.finished
            }
            .flatMap { output in exitPromise.futureResult.map { (output, $0) } }
            .map { [manifest, logger] output, exit in
                timeout.cancel()
                process.killAll()  // releases the control pipe; the supervisor is gone
                if collector.timedOut { return .timedOut }
                guard let output else { return .failed("output over \(Self.maxOutput) bytes") }
                guard exit == .exited(0) else {
                    logger.warning("exec function failed", metadata: ["function": .string(manifest.name), "exit": .string(exit.description)])
                    return .failed(exit.description)
                }
                return .ok(output)
            }
    }
}

/// Gathers a process's stdout until end-of-file.
///
/// `@unchecked Sendable`: made in `spawn` on the request's loop, added to a pipe channel on
/// that same loop, and read by the timeout and the future callbacks, all scheduled on that
/// loop; the compiler cannot see that the closures never leave it.
private final class OutputCollector: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    private var output: ByteBuffer?
    private var overflowed = false
    private let limit: Int
    private let promise: EventLoopPromise<ByteBuffer?>
    var timedOut = false

    init(limit: Int, eventLoop: EventLoop) {
        self.limit = limit
        self.promise = eventLoop.makePromise()
    }

    var finished: EventLoopFuture<ByteBuffer?> { promise.futureResult }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var chunk = unwrapInboundIn(data)
        if output == nil { output = context.channel.allocator.buffer(capacity: chunk.readableBytes) }
        if output!.readableBytes + chunk.readableBytes > limit {
            overflowed = true
            context.close(promise: nil)
            return
        }
        output!.writeBuffer(&chunk)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, case .inputClosed = event {
            context.close(promise: nil)
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        promise.succeed(overflowed ? nil : (output ?? ByteBuffer()))
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }
}
