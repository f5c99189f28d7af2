import Foundation
import NIOCore
import PorticoCore
import PorticoHTTP1

/// `GET /tap?route=NAME&status=5xx,404`: a live line per matching request, as server-sent
/// events (one JSON object per `data:` line), until the client goes away. `GET /taps`: the taps
/// open now.
extension AdminHandler {
    func streamTap(_ context: ChannelHandlerContext, _ head: RequestHead) {
        let query = TapQuery(target: head.target)
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

    /// Admin JSON without `\/` escapes (`JSONSerialization` writes them).
    func sendEncoded(_ context: ChannelHandlerContext, _ head: RequestHead, _ value: some Encodable, status: HTTPStatus = .ok) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        let data = (try? encoder.encode(value)) ?? Data("{}".utf8)
        var buffer = context.channel.allocator.buffer(capacity: data.count + 1)
        buffer.writeBytes(data)
        buffer.writeString("\n")
        send(context, head, status, buffer: buffer, contentType: "application/json")
    }
}

/// The body of `GET /taps`.
struct TapListing: Encodable {
    struct Tap: Encodable {
        var id: Int
        var kind: String
        var route: String?
        var status: String?
        var delivered: Int
        var dropped: Int
    }

    var count: Int
    /// Each proxy loop's own count of subscriptions (what the request path reads).
    var subscriptionsOnLoops: [Int]
    var taps: [Tap]
}

/// A tap's end of the stream, on the admin connection's loop: writes the batches the loops
/// hand over while the client keeps up, drops them when it does not.
final class TapConnection {
    let stream: AdminEventStream
    let hub: TapHub
    var id = 0
    private var delivery = TapDelivery()

    init(stream: AdminEventStream, hub: TapHub) {
        self.stream = stream
        self.hub = hub
    }

    func receive(_ batch: ByteBuffer, lines: Int, dropped: Int) {
        guard !stream.isStopped else { return }
        switch delivery.batchArrived(lines: lines, droppedOnLoop: dropped, writable: stream.isWritable) {
        case .drop:
            break
        case .write(let droppedBefore):
            if let droppedBefore {
                // An event of its own, so a client reading `data:` lines as requests skips it.
                stream.write("event: dropped\ndata: {\"dropped\":\(droppedBefore),\"total_dropped\":\(delivery.dropped)}\n\n")
            }
            stream.write(batch)
        }
        hub.account(id, delivered: delivery.delivered, dropped: delivery.dropped)
    }
}

/// The query of an admin request, decoded (`+` and percent escapes).
struct TapQuery {
    var items: [(String, String)] = []

    init(target: String) {
        let query = target.splitQuery().1
        for pair in query.split(separator: "&") where !pair.isEmpty {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = Self.decode(parts[0])
            let value = parts.count > 1 ? Self.decode(parts[1]) : ""
            items.append((name, value))
        }
    }

    static func decode(_ text: Substring) -> String {
        String(text).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? String(text)
    }
}
