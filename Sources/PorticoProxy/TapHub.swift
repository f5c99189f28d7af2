import NIOConcurrencyHelpers
import NIOCore
import PorticoCore

/// The live taps of the gateway: who listens, for which requests, and how it goes.
///
/// A subscription is pushed to every proxy event loop (one task per loop), so the request path
/// reads only its own loop's `LoopTap`; the lock here is taken by the admin API alone.
final class TapHub: Sendable {
    struct Entry: Sendable {
        var id: Int
        /// `tap` (a `GET /tap` client) or `dashboard` (an open dashboard's local replies).
        var kind: String
        var filter: TapFilter
        var filterText: (route: String?, status: String?)
        var delivered = 0
        var dropped = 0
    }

    private struct State {
        var nextID = 1
        var entries: [Int: Entry] = [:]
        /// The proxy loops are shutting down: nothing may be scheduled on them any more.
        var closed = false
    }

    private let loops: ProxyLoops
    private let state = NIOLockedValueBox(State())

    init(loops: ProxyLoops) {
        self.loops = loops
    }

    /// Adds a tap on every loop; the future completes once every loop has it (lines for
    /// requests that end after that reach `sink`).
    func subscribe(kind: String, filter: TapFilter, filterText: (route: String?, status: String?),
                   prefix: StaticString, sink: TapSink, on resultLoop: EventLoop) -> (id: Int, added: EventLoopFuture<Void>) {
        let loops = self.loops
        // Scheduled under the lock that `close` takes, so nothing lands on a loop that shut down.
        return state.withLockedValue { state in
            let id = state.nextID
            state.nextID += 1
            guard !state.closed else {
                return (id, resultLoop.makeFailedFuture(ChannelError.ioOnClosedChannel))
            }
            state.entries[id] = Entry(id: id, kind: kind, filter: filter, filterText: filterText)
            let added = loops.eventLoops.map { loop in
                loop.submit { () -> Void in
                    loops.context(on: loop)?.tap.add(id: id, filter: filter, prefix: prefix, sink: sink)
                }
            }
            return (id, EventLoopFuture.andAllSucceed(added, on: resultLoop))
        }
    }

    /// Takes the tap off every loop (lines already handed over may still arrive, and are dropped
    /// by their sink).
    func unsubscribe(_ id: Int) {
        let loops = self.loops
        state.withLockedValue { state in
            state.entries.removeValue(forKey: id)
            // Once closed, the loops and their lists are going away anyway.
            guard !state.closed else { return }
            for loop in loops.eventLoops {
                loop.execute { () -> Void in
                    loops.context(on: loop)?.tap.remove(id: id)
                }
            }
        }
    }

    /// Runs `body`, which schedules work on the proxy loops, unless they are shutting down
    /// (then nil). Under the lock `close` takes: a check and then a schedule would race it.
    func whileLoopsRun<T>(_ body: () -> T) -> T? {
        state.withLockedValue { state in state.closed ? nil : body() }
    }

    /// The gateway is about to stop its loops: from now on nothing is scheduled on them.
    func close() {
        state.withLockedValue { $0.closed = true }
    }

    /// What a tap's connection did with a batch (for `GET /taps`).
    func account(_ id: Int, delivered: Int, dropped: Int) {
        state.withLockedValue { state in
            state.entries[id]?.delivered = delivered
            state.entries[id]?.dropped = dropped
        }
    }

    var entries: [Entry] { state.withLockedValue { $0.entries.values.sorted { $0.id < $1.id } } }

    /// How many subscriptions each loop holds right now (each loop answers for itself).
    func subscriptionsOnLoops(on resultLoop: EventLoop) -> EventLoopFuture<[Int]> {
        let loops = self.loops
        return whileLoopsRun {
            let counts = loops.eventLoops.map { loop in
                loop.submit { loops.context(on: loop)?.tap.subscriberIDs.count ?? 0 }
            }
            return EventLoopFuture.whenAllSucceed(counts, on: resultLoop)
        } ?? resultLoop.makeSucceededFuture([])
    }
}
