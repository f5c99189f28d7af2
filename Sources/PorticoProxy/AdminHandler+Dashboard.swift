import Foundation
import NIOCore
import PorticoCore
import PorticoHTTP1

/// The dashboard: `GET /` and its two files, embedded in the binary (no CDN, no build step),
/// and `GET /dashboard/events`, the server-sent events that feed an open page: a snapshot a
/// second, and each local reply as it happens.
extension AdminHandler {
    func serveDashboardFile(_ context: ChannelHandlerContext, _ head: RequestHead, path: String) {
        let (bytes, type): ([UInt8], String)
        switch path {
        case "/dashboard.css": (bytes, type) = (PackageResources.dashboard_css, "text/css; charset=utf-8")
        case "/dashboard.js": (bytes, type) = (PackageResources.dashboard_js, "text/javascript; charset=utf-8")
        default: (bytes, type) = (PackageResources.index_html, "text/html; charset=utf-8")
        }
        var buffer = context.channel.allocator.buffer(capacity: bytes.count)
        buffer.writeBytes(bytes)
        send(context, head, .ok, buffer: buffer, contentType: type)
    }

    func streamDashboard(_ context: ChannelHandlerContext, _ head: RequestHead) {
        let stream = AdminEventStream(context: context, request: head)
        eventStream = stream
        let feed = DashboardFeed(stream: stream, gateway: gateway, eventLoop: context.eventLoop)
        let bound = NIOLoopBound(feed, eventLoop: context.eventLoop)
        // The local replies come as a tap of their own, written straight to the page.
        let sink = TapSink(eventLoop: context.eventLoop) { batch, lines, dropped in
            bound.value.replies(batch)
        }
        let taps = gateway.taps
        let (id, _) = taps.subscribe(kind: "dashboard", filter: TapFilter(localOnly: true), filterText: (nil, nil),
                                     prefix: "event: reply\ndata: ", sink: sink, on: context.eventLoop)
        stream.whenStopped {
            taps.unsubscribe(id)
            feed.stop()
        }
        feed.start()
    }
}
