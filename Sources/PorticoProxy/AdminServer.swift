import NIOCore
import NIOPosix
import PorticoHTTP1
import PorticoConfig

/// The admin API, on its own listener and its own event loop: health, readiness, the running
/// config, routes, services, Prometheus metrics and reload.
struct AdminServer {
    let gateway: Gateway

    func bind(address: HostPort, group: EventLoopGroup) async throws -> Channel {
        let gateway = self.gateway
        return try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    // Portico's own codec, as on the listeners: the same parser refuses the same
                    // malformed requests here.
                    let sync = channel.pipeline.syncOperations
                    try sync.addHandler(HTTP1RequestReader(maxHeadBytes: 64 * 1024))
                    try sync.addHandler(HTTP1ServerConnection(idleTimeout: .seconds(60)))
                    try sync.addHandler(AdminHandler(gateway: gateway))
                }
            }
            .bind(host: address.host, port: address.port)
            .get()
    }
}

final class AdminHandler: ChannelInboundHandler {
    typealias InboundIn = RequestPart
    typealias OutboundOut = ResponsePart

    let gateway: Gateway
    private var request: RequestHead?
    /// Set while the connection carries an event stream (`/tap`, `/dashboard/events`): what to
    /// stop when the client goes away.
    var eventStream: AdminEventStream?
    /// The request's body, for the endpoints that read one (`POST /explain`); bounded.
    private var body: ByteBuffer?
    private var bodyTooLarge = false
    static let maxBody = 1024 * 1024

    init(gateway: Gateway) {
        self.gateway = gateway
    }

    func channelInactive(context: ChannelHandlerContext) {
        eventStream?.stop()
        eventStream = nil
        context.fireChannelInactive()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        eventStream?.writabilityChanged(context.channel.isWritable)
        context.fireChannelWritabilityChanged()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        // `HTTP1ServerConnection` says the connection has been idle past its timeout.
        if event is IdleStateHandler.IdleStateEvent { context.close(promise: nil) }
        context.fireUserInboundEventTriggered(event)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            request = head
            body = nil
            bodyTooLarge = false
        case .body(var buffer):
            guard !bodyTooLarge else { return }
            if (body?.readableBytes ?? 0) + buffer.readableBytes > Self.maxBody {
                bodyTooLarge = true
                body = nil
            } else if body == nil {
                body = buffer
            } else {
                body!.writeBuffer(&buffer)
            }
        case .end:
            guard let head = request else { return }
            request = nil
            if bodyTooLarge { return send(context, head, .payloadTooLarge, "request body too large\n") }
            // A connection that carries an event stream answers nothing else.
            guard eventStream == nil else { return }
            respond(context: context, head: head)
        }
    }

    private func respond(context: ChannelHandlerContext, head: RequestHead) {
        let path = head.target.split(separator: "?", maxSplits: 1).first.map(String.init) ?? head.target
        switch (head.method, path) {
        case ("GET", "/healthz"):
            send(context, head, .ok, "ok\n")
        case ("GET", "/ready"):
            gateway.isReady ? send(context, head, .ok, "ready\n") : send(context, head, .serviceUnavailable, "not ready\n")
        case ("GET", "/config"):
            send(context, head, .ok, gateway.snapshot.config.renderJSON(), contentType: "application/json")
        case ("GET", "/routes"):
            listRoutes(context, head)
        case ("GET", "/services"):
            listServices(context, head)
        case ("GET", "/functions"):
            let snapshot = gateway.snapshot
            let failures = gateway.functionFailures
            let names = Set(snapshot.functions.keys).union(failures.keys).sorted()
            // Only the statuses cross loops (from each function's home loop); the JSON is
            // built here, on the admin connection's loop.
            let statuses: [EventLoopFuture<FunctionStatus?>] = names.map { name in
                guard let function = snapshot.functions[name] else {
                    return context.eventLoop.makeSucceededFuture(nil)
                }
                return function.status().map { Optional($0) }
            }
            // One pass over the routes, not one per function: with a thousand functions that
            // was a million comparisons per request.
            var routesByFunction: [String: [String]] = [:]
            for route in snapshot.routes {
                if case .function(let name) = route.action { routesByFunction[name, default: []].append(route.name) }
            }
            EventLoopFuture.whenAllComplete(statuses, on: context.eventLoop).assumeIsolated().whenSuccess { [self] results in
                let functions: [FunctionListing.Entry] = zip(names, results).compactMap { name, result in
                    let routes = routesByFunction[name] ?? []
                    guard snapshot.functions[name] != nil else {
                        return FunctionListing.Entry(name: name, routes: routes, failure: failures[name], status: nil)
                    }
                    guard case .success(let status?) = result else { return nil }
                    return FunctionListing.Entry(name: name, routes: routes, failure: failures[name], status: status)
                }
                let data = FunctionListing(functions: functions).encoded()
                var buffer = context.channel.allocator.buffer(capacity: data.count)
                buffer.writeBytes(data)
                send(context, head, .ok, buffer: buffer, contentType: "application/json")
            }
        case ("GET", "/metrics"):
            exposeMetrics(context, head)
        case ("GET", "/tap"):
            streamTap(context, head)
        case ("GET", "/taps"):
            listTaps(context, head)
        case ("GET", "/"), ("GET", "/dashboard.css"), ("GET", "/dashboard.js"):
            serveDashboardFile(context, head, path: path)
        case ("GET", "/dashboard/events"):
            streamDashboard(context, head)
        case (_, "/tap"), (_, "/taps"), (_, "/"), (_, "/dashboard.css"), (_, "/dashboard.js"), (_, "/dashboard/events"):
            send(context, head, .methodNotAllowed, "method not allowed\n")
        case ("POST", "/reload"):
            reload(context, head)
        case ("POST", "/explain"):
            explain(context: context, head: head, body: body)
        case (_, "/healthz"), (_, "/ready"), (_, "/config"), (_, "/routes"), (_, "/services"), (_, "/metrics"), (_, "/reload"), (_, "/functions"), (_, "/explain"):
            send(context, head, .methodNotAllowed, "method not allowed\n")
        default:
            send(context, head, .notFound, "not found\n")
        }
    }

    func send(_ context: ChannelHandlerContext, _ head: RequestHead, _ status: HTTPStatus, _ text: String,
              contentType: String = "text/plain; charset=utf-8") {
        var buffer = context.channel.allocator.buffer(capacity: text.utf8.count)
        buffer.writeString(text)
        send(context, head, status, buffer: buffer, contentType: contentType)
    }

    func send(_ context: ChannelHandlerContext, _ head: RequestHead, _ status: HTTPStatus,
              buffer: ByteBuffer, contentType: String) {
        let fields = HTTPFieldList([("content-type", contentType), ("content-length", String(buffer.readableBytes))])
        let response = ResponseHead(status: Int(status.code), version: head.version, fields: fields)
        context.write(wrapOutboundOut(.head(response)), promise: nil)
        if head.method != "HEAD" {
            context.write(wrapOutboundOut(.body(buffer)), promise: nil)
        }
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }
}
