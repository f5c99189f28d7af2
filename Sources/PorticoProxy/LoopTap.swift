import NIOCore
import PorticoCore

/// The taps one event loop writes lines for, touched only on that loop.
///
/// `TapHub` changes the list with one `execute` per subscribe and unsubscribe, so a request
/// reads a plain array, never a lock. Lines go into a per-tap buffer bounded by `TapOutbox`
/// and are handed to the tap's loop every `handOverInterval`; a full buffer drops lines
/// (counted), so a slow tap client never holds a request back.
final class LoopTap {
    final class Subscriber {
        let id: Int
        let filter: TapFilter
        /// What comes before each JSON object: `data: `, or an event name and `data: `.
        let prefix: StaticString
        let sink: TapSink
        var outbox: TapOutbox
        var buffer: ByteBuffer

        init(id: Int, filter: TapFilter, prefix: StaticString, sink: TapSink, capacity: Int) {
            self.id = id
            self.filter = filter
            self.prefix = prefix
            self.sink = sink
            self.outbox = TapOutbox(capacity: capacity)
            self.buffer = ByteBuffer()
        }
    }

    static let handOverInterval = TimeAmount.milliseconds(50)
    /// Lines per tap per loop between hand-overs: 2,000 per 50 ms is 40,000 lines a second per loop.
    static let capacity = 2000

    let eventLoop: EventLoop
    private var subscribers: [Subscriber] = []

    init(eventLoop: EventLoop) {
        self.eventLoop = eventLoop
    }

    var hasSubscribers: Bool {
        @inline(__always) get { !subscribers.isEmpty }
    }

    var subscriberIDs: [Int] { subscribers.map(\.id) }

    func add(id: Int, filter: TapFilter, prefix: StaticString, sink: TapSink) {
        subscribers.append(Subscriber(id: id, filter: filter, prefix: prefix, sink: sink, capacity: Self.capacity))
    }

    func remove(id: Int) {
        subscribers.removeAll { $0.id == id }
    }

    func record(_ ending: ExchangeEnding) {
        // Answered by the gateway itself (`portico_local_replies_total`'s requests).
        let local = ending.localReply != nil
        for subscriber in subscribers
        where subscriber.filter.matches(route: ending.record.route, status: ending.status, local: local) {
            switch subscriber.outbox.offer() {
            case .drop:
                continue
            case .append(let scheduleHandOver):
                subscriber.buffer.writeStaticString(subscriber.prefix)
                TapLayer.writeLine(ending, local: local, to: &subscriber.buffer)
                subscriber.buffer.writeStaticString("\n\n")
                if scheduleHandOver {
                    eventLoop.assumeIsolated().scheduleTask(in: Self.handOverInterval) { [self] in
                        self.handOver(subscriber)
                    }
                }
            }
        }
    }

    private func handOver(_ subscriber: Subscriber) {
        let (lines, dropped) = subscriber.outbox.handOver()
        let batch = subscriber.buffer
        subscriber.buffer = ByteBuffer()
        // Gone meanwhile: its lines have no one to go to.
        guard subscribers.contains(where: { $0 === subscriber }), lines > 0 || dropped > 0 else { return }
        let sink = subscriber.sink
        sink.eventLoop.execute { sink.receive(batch, lines, dropped) }
    }
}
