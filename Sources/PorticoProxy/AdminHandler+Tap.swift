import Foundation
import NIOCore
import PorticoCore
import PorticoHTTP1

/// `GET /tap?route=NAME&status=5xx,404`: a live line per matching request, as server-sent
/// events (one JSON object per `data:` line), until the client goes away. `GET /taps`: the taps
/// open now.
extension AdminHandler {
    func streamTap(_ context: ChannelHandlerContext, _ head: RequestHead) {
        let query = AdminQuery(target: head.target)
        var filter = TapFilter()
        for (name, value) in query.items {
            switch name {
            case "route":
                guard !value.isEmpty else { return sendError(context, head, "route: give a route's name") }
                filter.route = value
            case "status":
                do {
                    filter.statuses += try TapFilter.statuses(parsing: value)
                } catch {
                    return sendError(context, head, "\(error)")
                }
            default:
                return sendError(context, head, "unknown parameter '\(name)': /tap takes route and status")
            }
        }
        let stream = AdminEventStream(context: context, request: head)
        eventStream = stream
        let connection = TapConnection(stream: stream, hub: gateway.taps)
        let bound = NIOLoopBound(connection, eventLoop: context.eventLoop)
        let sink = TapSink(eventLoop: context.eventLoop) { batch, lines, dropped in
            bound.value.receive(batch, lines: lines, dropped: dropped)
        }
        let statusText = query.items.filter { $0.0 == "status" }.map(\.1)
        let (id, added) = gateway.taps.subscribe(
            kind: "tap", filter: filter, filterText: (filter.route, statusText.isEmpty ? nil : statusText.joined(separator: ",")),
            prefix: "data: ", sink: sink, on: context.eventLoop)
        connection.id = id
        let taps = gateway.taps
        stream.whenStopped { taps.unsubscribe(id) }
        // Said once every loop has the tap: requests that end from now on are seen.
        added.assumeIsolated().whenSuccess { stream.write(": tap \(id) listening\n\n") }
    }

    func listTaps(_ context: ChannelHandlerContext, _ head: RequestHead) {
        let entries = gateway.taps.entries
        gateway.taps.subscriptionsOnLoops(on: context.eventLoop).assumeIsolated().whenSuccess { [self] perLoop in
            let listing = TapListing(
                count: entries.count, subscriptionsOnLoops: perLoop,
                taps: entries.map { entry in
                    TapListing.Tap(id: entry.id, kind: entry.kind, route: entry.filterText.route, status: entry.filterText.status,
                                   delivered: entry.delivered, dropped: entry.dropped)
                })
            sendEncoded(context, head, listing)
        }
    }

    func sendError(_ context: ChannelHandlerContext, _ head: RequestHead, _ message: String) {
        struct Failure: Encodable { var error: String }
        sendEncoded(context, head, Failure(error: message), status: .badRequest)
    }
}
