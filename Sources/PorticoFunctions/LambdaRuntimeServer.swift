import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import PorticoCore

#if canImport(Glibc)
import Glibc
#endif

/// The AWS Lambda Runtime API that one lambda-mode worker talks to, on a loopback port of its
/// own (`AWS_LAMBDA_RUNTIME_API`): the shell around its `LambdaRuntimeStateMachine`.
///
/// It speaks HTTP/1.1 through NIOHTTP1 rather than Portico's own codec: this is one local
/// runtime's control channel, a request or two per invocation, not the gateway's request
/// path. Everything runs on the function's home loop, where the scaler lives too.
///
/// `@unchecked Sendable`: every mutable field is touched only on `eventLoop` (its connections
/// are accepted onto that loop too), which the compiler cannot see.
final class LambdaRuntimeServer: @unchecked Sendable {
    typealias Machine = LambdaRuntimeStateMachine<ByteBuffer>
    typealias Completion = (Machine.Outcome) -> Void

    static let apiPrefix = "/2018-06-01/runtime/"
    /// Lambda's limit for a synchronous invocation's response (and its request): 6 MB.
    static let maxBody = 6 * 1024 * 1024 + 64 * 1024

    let port: Int
    let eventLoop: EventLoop
    private let functionARN: String
    private let timeout: TimeAmount
    private let logger: Logger
    private var machine = Machine()
    private var channel: Channel?
    private var connections: [UInt64: RuntimeAPIHandler] = [:]
    private var nextConnectionID: UInt64 = 0
    private var invocations: [String: Invocation] = [:]

    /// Told (on the home loop) of the runtime's first poll: the worker is ready.
    var onReady: () -> Void = {}
    /// Told of the runtime's init error: its type and message.
    var onInitError: (String) -> Void = { _ in }
    /// Told when an invocation ran past its deadline: the worker must be killed and replaced.
    var onTimedOut: () -> Void = {}

    private struct Invocation {
        var event: ByteBuffer
        var deadlineEpochMilliseconds: Int64
        var traceID: String
        var completion: Completion
        var timer: Scheduled<Void>?
    }

    /// Listens on 127.0.0.1 at a port the kernel picks. The socket is made and listening before
    /// this returns (the worker may connect as soon as it is spawned), and close-on-exec, so no
    /// child inherits it.
    init(eventLoop: EventLoop, functionARN: String, timeout: TimeAmount, logger: Logger) throws {
        self.eventLoop = eventLoop
        self.functionARN = functionARN
        self.timeout = timeout
        self.logger = logger
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard fd >= 0 else { throw SpawnError.pipe(errno) }
        guard LoopbackAddress.call(bind, socket: fd, port: 0) == 0, listen(fd, 16) == 0 else {
            let error = errno
            Glibc.close(fd)
            throw SpawnError.pipe(error)
        }
        port = LoopbackAddress.boundPort(of: fd)
        ServerBootstrap(group: eventLoop)
            .childChannelInitializer { [self] channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    nextConnectionID += 1
                    let handler = RuntimeAPIHandler(server: self, id: nextConnectionID)
                    connections[nextConnectionID] = handler
                    try channel.pipeline.syncOperations.addHandler(handler)
                }
            }
            .withBoundSocket(fd)
            .assumeIsolated()
            .whenComplete { [self] result in
                switch result {
                case .success(let channel): self.channel = channel
                case .failure(let error): logger.error("lambda runtime API cannot listen", metadata: ["error": .string("\(error)")])
                }
            }
    }

    // MARK: From the function

    /// Hands the worker an invocation; `completion` hears how it ended (on the home loop).
    func invoke(id: String, event: ByteBuffer, completion: @escaping Completion) {
        eventLoop.preconditionInEventLoop()
        let deadline = Int64(Date().timeIntervalSince1970 * 1000) + timeout.nanoseconds / 1_000_000
        invocations[id] = Invocation(event: event, deadlineEpochMilliseconds: deadline, traceID: Self.traceID(),
                                     completion: completion)
        perform(machine.invocationArrived(id))
    }

    /// The worker's process is gone: what it had gets no answer, and the port closes.
    func workerExited() {
        perform(machine.workerExited())
        for (_, invocation) in invocations { invocation.completion(.lost) }
        invocations.removeAll()
        close()
    }

    func close() {
        channel?.close(promise: nil)
        channel = nil
        for (_, connection) in connections { connection.close() }
        connections.removeAll()
    }

    // MARK: From the runtime

    fileprivate func received(_ request: HTTPRequestHead, body: ByteBuffer, on connection: UInt64) {
        let path = request.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? request.uri
        guard path.hasPrefix(Self.apiPrefix) else { return reply(connection, status: .notFound, error: "not found") }
        let route = path.dropFirst(Self.apiPrefix.count).split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        switch (request.method, route.count) {
        case (.GET, 2) where route == ["invocation", "next"]:
            perform(machine.nextRequested(on: connection))
        case (.POST, 3) where route[0] == "invocation" && route[2] == "response":
            perform(machine.responsePosted(route[1], body: body, on: connection))
        case (.POST, 3) where route[0] == "invocation" && route[2] == "error":
            perform(machine.errorPosted(route[1], body: body, on: connection))
        case (.POST, 2) where route == ["init", "error"]:
            perform(machine.initErrorPosted(body: body, on: connection))
        default:
            reply(connection, status: .notFound, error: "not found")
        }
    }

    fileprivate func closed(_ connection: UInt64) {
        connections[connection] = nil
        perform(machine.connectionClosed(connection))
    }

    private func perform(_ actions: [Machine.Action]) {
        for action in actions {
            switch action {
            case .workerReady:
                onReady()
            case .deliver(let id, to: let connection):
                guard let invocation = invocations[id] else { continue }
                var headers = HTTPHeaders()
                headers.add(name: "content-type", value: "application/json")
                headers.add(name: "lambda-runtime-aws-request-id", value: id)
                headers.add(name: "lambda-runtime-deadline-ms", value: String(invocation.deadlineEpochMilliseconds))
                headers.add(name: "lambda-runtime-invoked-function-arn", value: functionARN)
                headers.add(name: "lambda-runtime-trace-id", value: invocation.traceID)
                connections[connection]?.respond(status: .ok, headers: headers, body: invocation.event)
            case .accept(let connection):
                reply(connection, status: .accepted, json: #"{"status":"OK"}"#)
            case .refuse(let connection, let refusal):
                switch refusal {
                case .unknownInvocation: reply(connection, status: .badRequest, error: "no such invocation on this worker")
                case .invalidState: reply(connection, status: .forbidden, error: "not allowed in the worker's state")
                }
            case .startDeadline(let id):
                invocations[id]?.timer = eventLoop.assumeIsolated().scheduleTask(in: timeout) { [self] in
                    perform(machine.deadlinePassed(id))
                }
            case .cancelDeadline(let id):
                invocations[id]?.timer?.cancel()
            case .finish(let id, let outcome):
                guard let invocation = invocations.removeValue(forKey: id) else { continue }
                invocation.timer?.cancel()
                invocation.completion(outcome)
            case .initFailed(let body):
                onInitError(Self.describeError(body))
            case .killWorker:
                onTimedOut()
            }
        }
    }

    private func reply(_ connection: UInt64, status: HTTPResponseStatus, error: String) {
        reply(connection, status: status, json: #"{"errorMessage":"\#(error)","errorType":"InvalidRequest"}"#)
    }

    private func reply(_ connection: UInt64, status: HTTPResponseStatus, json: String) {
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: "application/json")
        connections[connection]?.respond(status: status, headers: headers, body: ByteBuffer(string: json))
    }

    /// `errorType: errorMessage` from a runtime's error body (`{"errorMessage", "errorType", ...}`),
    /// or the body's text as it is.
    static func describeError(_ body: ByteBuffer) -> String {
        let bytes = Array(body.readableBytesView)
        if let object = (try? JSONSerialization.jsonObject(with: Data(bytes))) as? [String: Any] {
            let type = (object["errorType"] as? String) ?? "Error"
            let message = (object["errorMessage"] as? String) ?? ""
            return message.isEmpty ? type : "\(type): \(message)"
        }
        let text = String(decoding: bytes.prefix(512), as: UTF8.self)
        return text.isEmpty ? "Error" : text
    }

    /// An X-Ray-shaped trace id (`Root=1-<epoch hex>-<24 hex>;Sampled=0`); nothing reads it
    /// here, but runtimes expect one.
    static func traceID() -> String {
        let epoch = String(UInt32(Date().timeIntervalSince1970), radix: 16)
        var random = SystemRandomNumberGenerator()
        let high = String(random.next() as UInt64, radix: 16)
        let low = String(UInt32(truncatingIfNeeded: random.next() as UInt64), radix: 16)
        let tail = String(repeating: "0", count: 16 - high.count) + high + String(repeating: "0", count: 8 - low.count) + low
        return "Root=1-\(String(repeating: "0", count: 8 - epoch.count) + epoch)-\(tail);Sampled=0"
    }
}

/// One connection of the runtime: gathers each request whole and hands it to the server.
private final class RuntimeAPIHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    /// Weak: a connection may still close after its worker, and so the server, is gone.
    private weak var server: LambdaRuntimeServer?
    private let id: UInt64
    private var head: HTTPRequestHead?
    private var body = ByteBuffer()
    private var context: ChannelHandlerContext?
    private var tooLarge = false

    init(server: LambdaRuntimeServer, id: UInt64) {
        self.server = server
        self.id = id
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            body.clear()
            tooLarge = false
            if head.headers["expect"].contains(where: { $0.lowercased() == "100-continue" }) {
                // curl asks before a large POST and otherwise waits a second for this.
                context.writeAndFlush(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: .continue))),
                                      promise: nil)
            }
        case .body(var chunk):
            if body.readableBytes + chunk.readableBytes > LambdaRuntimeServer.maxBody {
                tooLarge = true
            } else {
                body.writeBuffer(&chunk)
            }
        case .end:
            guard let head else { return }
            self.head = nil
            if tooLarge {
                var headers = HTTPHeaders()
                headers.add(name: "connection", value: "close")
                respond(status: .payloadTooLarge, headers: headers, body: ByteBuffer(string: "payload too large\n"))
                context.close(promise: nil)
                return
            }
            server?.received(head, body: body, on: id)
        }
    }

    func respond(status: HTTPResponseStatus, headers: HTTPHeaders, body: ByteBuffer) {
        guard let context else { return }
        var headers = headers
        headers.replaceOrAdd(name: "content-length", value: String(body.readableBytes))
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }

    func close() {
        context?.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.context = nil
        server?.closed(id)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }
}
