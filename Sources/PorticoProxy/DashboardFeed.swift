import Foundation
import NIOCore
import PorticoCore

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
