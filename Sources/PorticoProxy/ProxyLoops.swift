import NIOCore
import PorticoConfig

/// The event loops that serve requests, each with its `LoopContext`.
///
/// A context is touched only on its own loop: `NIOLoopBoundBox` checks that on every access,
/// which is what lets the gateway, its services and the function registry's callbacks share
/// this value across threads with the compiler's blessing.
struct ProxyLoops: Sendable {
    private struct Entry: Sendable {
        let eventLoop: EventLoop
        let context: NIOLoopBoundBox<LoopContext>
    }

    private let entries: [Entry]
    private let indexByLoop: [ObjectIdentifier: Int]

    init(group: EventLoopGroup, snapshot: RuntimeSnapshot, metrics: GatewayMetrics, accessLogWriter: AccessLogWriter?) {
        var entries: [Entry] = []
        var indexByLoop: [ObjectIdentifier: Int] = [:]
        for (index, loop) in group.makeIterator().enumerated() {
            // Made here and sent to its loop: nothing else holds it yet.
            let context = LoopContext(eventLoop: loop, loopIndex: index, snapshot: snapshot, metrics: metrics,
                                      accessLogWriter: accessLogWriter)
            entries.append(Entry(eventLoop: loop, context: .makeBoxSendingValue(context, as: LoopContext.self, eventLoop: loop)))
            indexByLoop[ObjectIdentifier(loop)] = index
        }
        self.entries = entries
        self.indexByLoop = indexByLoop
    }

    var eventLoops: [EventLoop] { entries.map(\.eventLoop) }

    /// The context of `loop`; call on `loop` only.
    func context(on loop: EventLoop) -> LoopContext? {
        indexByLoop[ObjectIdentifier(loop)].map { entries[$0].context.value }
    }

    /// Runs `body` on every loop with its context, without waiting.
    func onEach(_ body: @escaping @Sendable (LoopContext) -> Void) {
        for entry in entries {
            let context = entry.context
            entry.eventLoop.execute { body(context.value) }
        }
    }

    /// Runs `body` on every loop with its context, one loop after the other, and returns when all are done.
    func onEachAndWait(_ body: @escaping @Sendable (LoopContext) -> Void) async {
        for entry in entries {
            let context = entry.context
            try? await entry.eventLoop.submit { body(context.value) }.get()
        }
    }

    /// Open and idle upstream connections per endpoint, summed over every loop.
    func upstreamStatistics(on resultLoop: EventLoop) -> EventLoopFuture<[HostPort: (open: Int, idle: Int)]> {
        let futures = entries.map { entry in
            let context = entry.context
            return entry.eventLoop.submit { context.value.poolStatistics() }
        }
        return EventLoopFuture.reduce(into: [HostPort: (open: Int, idle: Int)](), futures, on: resultLoop) { total, stats in
            for (endpoint, counts) in stats {
                let previous = total[endpoint] ?? (0, 0)
                total[endpoint] = (previous.open + counts.open, previous.idle + counts.idle)
            }
        }
    }
}
