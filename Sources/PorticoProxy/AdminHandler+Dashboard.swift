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

/// One open dashboard page's feed, on its connection's loop: a snapshot a second, built only
/// while the page is open, with the routes' traffic as the change since the last one.
final class DashboardFeed {
    let stream: AdminEventStream
    let gateway: Gateway
    let eventLoop: EventLoop
    private var timer: Scheduled<Void>?
    private var stopped = false
    private var previous: (traffic: RouteTraffic, at: NIODeadline)?
    private var building = false

    static let interval = TimeAmount.seconds(1)

    init(stream: AdminEventStream, gateway: Gateway, eventLoop: EventLoop) {
        self.stream = stream
        self.gateway = gateway
        self.eventLoop = eventLoop
    }

    func start() {
        guard !stopped else { return }
        tick()
        timer = eventLoop.assumeIsolated().scheduleTask(in: Self.interval) { [self] in
            self.start()
        }
    }

    func stop() {
        stopped = true
        timer?.cancel()
        timer = nil
    }

    func replies(_ batch: ByteBuffer) {
        // A page that does not keep up misses replies; the next snapshot still comes.
        if stream.isWritable { stream.write(batch) }
    }

    private func tick() {
        // A page that does not read gets no new snapshot, and nothing is built for it.
        guard !building, stream.isWritable else { return }
        building = true
        let snapshot = gateway.snapshot
        let failures = gateway.functionFailures
        let names = snapshot.functions.keys.sorted()
        let gateway = self.gateway
        let eventLoop = self.eventLoop
        // The statuses and pool statistics are asked of the proxy loops: not while they stop.
        guard let all = gateway.taps.whileLoopsRun({
            let statuses = names.map { snapshot.functions[$0]!.status() }
            let pools = gateway.upstreamStatistics().hop(to: eventLoop)
            return EventLoopFuture.whenAllComplete(statuses, on: eventLoop).and(pools)
        }) else {
            building = false
            return
        }
        all.assumeIsolated().whenComplete { [self] result in
            self.building = false
            guard !self.stream.isStopped, case .success(let (results, poolStatistics)) = result else { return }
            var byName: [String: FunctionStatus] = [:]
            for (name, status) in zip(names, results) {
                if case .success(let status) = status { byName[name] = status }
            }
            let now = NIODeadline.now()
            let traffic = RouteTraffic(exposition: self.gateway.metrics.render())
            let seconds = self.previous.map { Double((now - $0.at).nanoseconds) / 1e9 } ?? 0
            let rates = traffic.rates(since: self.previous?.traffic ?? traffic, seconds: seconds)
            self.previous = (traffic, now)
            let body = DashboardSnapshot(
                snapshot: snapshot, poolStatistics: poolStatistics, functionStatuses: byName, functionFailures: failures,
                traffic: traffic, rates: rates, intervalSeconds: seconds, timeUnixMs: Int(AccessClock.unixMilliseconds()),
                taps: self.gateway.taps.entries.filter { $0.kind == "tap" }.count)
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            guard let data = try? encoder.encode(body) else { return }
            var buffer = ByteBufferAllocator().buffer(capacity: data.count + 32)
            buffer.writeStaticString("event: snapshot\ndata: ")
            buffer.writeBytes(data)
            buffer.writeStaticString("\n\n")
            self.stream.write(buffer)
        }
    }
}
