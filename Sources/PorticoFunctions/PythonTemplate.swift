import Foundation
import Logging
import NIOCore
import NIOExtras
import NIOPosix
import PorticoConfig
import PorticoCore

#if canImport(Glibc)
import Glibc
#endif

/// The shell around one revision's `TemplateProcessStateMachine`: the template process of a
/// `runtime: python` function, which imports the handler once and forks each worker.
///
/// The gateway talks to it over a socket that is the template's stdin, one JSON object per
/// line (the protocol is written down in `Launcher/python_launcher.py`). Forked workers are the
/// template's children, so it signals and reaps them and reports each exit; they are also
/// descendants of the template's supervisor, which kills them all if the template or the
/// gateway dies. This runs on the revision's home loop; JSON is fine here, since it is one
/// line per worker start, not per request.
final class PythonTemplate {
    /// What the revision hears about its workers, on the home loop.
    struct Events {
        var forked: (UInt64, Int32) -> Void
        var exited: (UInt64, ChildExit) -> Void
        /// Never forked (the template failed, or the fork did).
        var failed: (UInt64, String) -> Void
    }

    private var machine: TemplateProcessStateMachine
    private let manifest: FunctionManifest
    private let revision: String
    private let eventLoop: EventLoop
    private let logger: Logger
    private let events: Events
    private var process: ChildProcess?
    private var control: Channel?
    private var requests: [UInt64: (port: Int, environment: [String: String])] = [:]
    private var pids: [UInt64: Int32] = [:]
    private var workers: [Int32: UInt64] = [:]
    /// Signals for workers whose fork is still to be reported.
    private var pendingSignals: [UInt64: Int32] = [:]
    private var restartTask: Scheduled<Void>?
    private var killTask: Scheduled<Void>?

    init(manifest: FunctionManifest, revision: String, eventLoop: EventLoop, logger: Logger, events: Events) {
        self.manifest = manifest
        self.revision = revision
        self.eventLoop = eventLoop
        self.logger = logger
        self.events = events
        self.machine = TemplateProcessStateMachine(configuration: .init(keepWhileIdle: manifest.idleTemplate))
    }

    /// The interpreter's pid, as it reported it (its supervisor's is `process.pid`).
    var pid: Int32? { process == nil ? nil : reportedPID }
    private var reportedPID: Int32?
    var phase: TemplateProcessStateMachine.Phase { machine.phase }
    var lastFailure: String? { machine.lastFailure }
    var failures: Int { machine.failures }

    func deployed() {
        perform(machine.deployed())
    }

    /// Asks for worker `number` on `port`; `events` tells how it went.
    func fork(worker number: UInt64, port: Int, environment: [String: String]) {
        requests[number] = (port, environment)
        perform(machine.workerNeeded(number))
    }

    func signal(worker number: UInt64, _ signal: Int32) {
        if let pid = pids[number] {
            send(["op": "signal", "pid": Int(pid), "signal": Int(signal)])
        } else if requests[number] != nil {
            // Not forked yet: asked for, or on its way.
            pendingSignals[number] = signal
            if signal == SIGKILL, machine.phase != .ready {
                requests[number] = nil
                perform(machine.workerCancelled(number))
                events.failed(number, "stopped before it was forked")
            }
        }
    }

    /// The revision is done: the template goes (its workers have).
    func finish() {
        perform(machine.finish())
    }

    // MARK: Actions

    private func perform(_ actions: [TemplateProcessStateMachine.Action]) {
        for action in actions {
            switch action {
            case .spawn:
                spawn()
            case .fork(let number):
                guard let request = requests[number] else { continue }
                send(["op": "fork", "id": Int(number), "port": request.port, "env": request.environment])
            case .workerFailed(let number, let reason):
                requests[number] = nil
                pendingSignals[number] = nil
                events.failed(number, reason)
            case .workerLost(let number):
                requests[number] = nil
                if let pid = pids.removeValue(forKey: number) { workers[pid] = nil }
                events.exited(number, .signaled(SIGKILL))
            case .scheduleRestart(let delay):
                logger.warning("function template failed; restarting it", metadata: metadata([
                    "in_ms": .stringConvertible(delay / 1_000_000), "failures": .stringConvertible(machine.failures),
                ]))
                restartTask = eventLoop.assumeIsolated().scheduleTask(in: .nanoseconds(Int64(delay))) { [self] in
                    restartTask = nil
                    perform(machine.restartFired())
                }
            case .stop:
                restartTask?.cancel()
                guard let process else { continue }
                logger.info("stopping function template", metadata: metadata(["pid": .stringConvertible(process.pid)]))
                process.signalGroup(SIGTERM)
                killTask = eventLoop.assumeIsolated().scheduleTask(in: manifest.gracePeriod.nanosecondsAmount) {
                    process.killAll()
                }
            }
        }
    }

    private func spawn() {
        guard let handler = manifest.handler else { return }
        var sockets: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &sockets) == 0 else {
            return spawnFailed("socketpair: \(String(cString: strerror(errno)))")
        }
        var environment = WorkerProcess.environment(manifest: manifest, revision: revision, port: nil)
        environment[PythonLauncher.environmentName] = PythonLauncher.source
        let spawned: ChildProcess.Spawned
        do {
            spawned = try ChildProcess.spawn(
                command: PythonLauncher.command(.template, manifest.mode == .lambda ? .lambda : .wsgi, handler: handler),
                directory: manifest.directory,
                environment: environment, stdinDescriptor: sockets[1],
                memoryLimit: manifest.limits.memory, openFilesLimit: manifest.limits.openFiles)
        } catch {
            close(sockets[0])
            close(sockets[1])
            return spawnFailed("\(error)")
        }
        close(sockets[1])
        let process = spawned.process
        self.process = process
        logger.info("starting function template", metadata: metadata(["pid": .stringConvertible(process.pid)]))
        let prefix = "\(manifest.name)#template"
        OutputLines.forward(fd: spawned.stdout, on: eventLoop, logger: logger, prefix: prefix, stream: "stdout")
        if let stderr = spawned.stderr {
            OutputLines.forward(fd: stderr, on: eventLoop, logger: logger, prefix: prefix, stream: "stderr")
        }
        let loop = eventLoop
        // The reaper and the channel initializer call from elsewhere; `self` is the loop's only.
        let bound = NIOLoopBound(self, eventLoop: loop)
        ChildReaper.shared.watch(process.pid) { exit in
            loop.execute { bound.value.exited(process, exit) }
        }
        ClientBootstrap(group: eventLoop)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(LineBasedFrameDecoder()))
                    try channel.pipeline.syncOperations.addHandler(ControlHandler(template: bound.value))
                }
            }
            .withConnectedSocket(sockets[0])
            .assumeIsolated()
            .whenComplete { [self] result in
                switch result {
                case .success(let channel) where self.process?.pid == process.pid:
                    control = channel
                case .success(let channel):
                    channel.close(promise: nil)
                case .failure(let error):
                    logger.error("cannot talk to the function template", metadata: metadata(["error": .string("\(error)")]))
                    process.killAll()
                }
            }
    }

    private func spawnFailed(_ reason: String) {
        logger.error("cannot start function template", metadata: metadata(["error": .string(reason)]))
        machine.templateReportedFailure(reason)
        // As if it had exited at once, but not within this call: the machine is mid-action.
        eventLoop.assumeIsolated().execute { [self] in perform(machine.templateExited(status: "not started")) }
    }

    private func exited(_ process: ChildProcess, _ exit: ChildExit) {
        guard self.process?.pid == process.pid else { return }
        process.killAll()
        killTask?.cancel()
        self.process = nil
        reportedPID = nil
        control?.close(promise: nil)
        control = nil
        logger.info("function template stopped", metadata: metadata(["exit": .string(exit.description)]))
        perform(machine.templateExited(status: exit.description))
    }

    private func send(_ message: [String: Any]) {
        guard let control, let data = try? JSONSerialization.data(withJSONObject: message) else { return }
        var buffer = control.allocator.buffer(capacity: data.count + 1)
        buffer.writeBytes(data)
        buffer.writeInteger(UInt8(ascii: "\n"))
        control.writeAndFlush(buffer, promise: nil)
    }

    // MARK: Reports

    fileprivate func received(_ line: ByteBuffer) {
        guard let object = try? JSONSerialization.jsonObject(with: Data(line.readableBytesView)) as? [String: Any],
              let op = object["op"] as? String else {
            logger.warning("function template sent a line that is not a report", metadata: metadata([:]))
            return
        }
        let number = (object["id"] as? Int).map { UInt64($0) }
        let pid = (object["pid"] as? Int).map { Int32($0) }
        switch op {
        case "ready":
            reportedPID = pid
            logger.info("function template ready", metadata: metadata(["pid": .stringConvertible(pid ?? 0)]))
            perform(machine.templateReady())
        case "failed":
            let error = (object["error"] as? String) ?? "failed"
            // The whole traceback went to the log already, from the template's stderr.
            let summary = error.split(separator: "\n").last.map(String.init) ?? error
            logger.error("function template failed to import its handler", metadata: metadata(["error": .string(summary)]))
            machine.templateReportedFailure(error)
        case "forked":
            guard let number, let pid, requests.removeValue(forKey: number) != nil else { return }
            pids[number] = pid
            workers[pid] = number
            perform(machine.forked(number))
            events.forked(number, pid)
            if let signal = pendingSignals.removeValue(forKey: number) {
                send(["op": "signal", "pid": Int(pid), "signal": Int(signal)])
            }
        case "fork-failed":
            guard let number else { return }
            perform(machine.forkFailed(number, reason: (object["error"] as? String) ?? "fork failed"))
        case "exited":
            guard let pid, let number = workers.removeValue(forKey: pid) else { return }
            pids[number] = nil
            let status = Int32((object["status"] as? Int) ?? 0)
            perform(machine.workerExited(number))
            events.exited(number, ChildExit(waitStatus: status))
        default:
            break
        }
    }

    private func metadata(_ extra: Logger.Metadata) -> Logger.Metadata {
        var metadata: Logger.Metadata = ["function": .string(manifest.name), "revision": .string(revision)]
        metadata.merge(extra) { _, new in new }
        return metadata
    }

    /// Hands each line from the template to it. The template is confined to the home loop,
    /// which is this channel's loop too.
    private final class ControlHandler: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        let template: PythonTemplate

        init(template: PythonTemplate) {
            self.template = template
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            template.received(unwrapInboundIn(data))
        }

        func errorCaught(context: ChannelHandlerContext, error: Error) {
            context.close(promise: nil)
        }
    }
}

extension ChildExit {
    /// From a raw `waitpid` status, as the template reports it.
    init(waitStatus status: Int32) {
        if status & 0x7f == 0 {
            self = .exited((status >> 8) & 0xff)
        } else {
            self = .signaled(status & 0x7f)
        }
    }
}
