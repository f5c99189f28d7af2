import NIOCore
import PorticoHTTP1

/// The admin endpoints that list the running state (`/routes`, `/services`), reload, and
/// expose the metrics: each a function the switch in `AdminHandler.respond` calls.
extension AdminHandler {
    func listRoutes(_ context: ChannelHandlerContext, _ head: RequestHead) {
        let snapshot = gateway.snapshot
        sendEncoded(context, head, RouteListing(generation: snapshot.generation, routes: snapshot.routes))
    }

    func listServices(_ context: ChannelHandlerContext, _ head: RequestHead) {
        let snapshot = gateway.snapshot
        gateway.upstreamStatistics().assumeIsolated().whenComplete { [self] result in
            sendEncoded(context, head, ServiceListing(snapshot: snapshot, connections: (try? result.get()) ?? [:]))
        }
    }

    func reload(_ context: ChannelHandlerContext, _ head: RequestHead) {
        gateway.requestReload().hop(to: context.eventLoop).assumeIsolated().whenSuccess { [self] outcome in
            sendEncoded(context, head, ReloadAnswer(reloaded: outcome.succeeded, generation: outcome.generation,
                                                    message: outcome.message),
                        status: outcome.succeeded ? .ok : .badRequest)
        }
    }

    func exposeMetrics(_ context: ChannelHandlerContext, _ head: RequestHead) {
        // Endpoint health and ejection are read now, so a scrape sees them as they are.
        gateway.metrics.publishEndpointStates(gateway.snapshot)
        var buffer = context.channel.allocator.buffer(capacity: 4096)
        buffer.writeBytes(gateway.metrics.render())
        send(context, head, .ok, buffer: buffer, contentType: "text/plain; version=0.0.4; charset=utf-8")
    }

    func sendEncoded(_ context: ChannelHandlerContext, _ head: RequestHead, _ value: some Encodable, status: HTTPStatus = .ok) {
        let data = AdminJSON.encode(value)
        var buffer = context.channel.allocator.buffer(capacity: data.count)
        buffer.writeBytes(data)
        send(context, head, status, buffer: buffer, contentType: "application/json")
    }
}
