/// One tap's lines on one event loop, between the requests that make them and the batch handed
/// to the tap's connection: a count-bounded buffer that drops (and counts) what does not fit.
///
/// Pure: the shell keeps the bytes and the timer; this decides. A request never waits for a
/// tap: when the outbox is full, its line is dropped.
public struct TapOutbox: Sendable, Equatable {
    /// Lines kept between two hand-overs.
    public let capacity: Int
    /// Lines waiting for the next hand-over.
    public private(set) var pending = 0
    /// Lines dropped since the last hand-over, because the outbox was full.
    public private(set) var dropped = 0
    private var handOverScheduled = false

    public init(capacity: Int) {
        self.capacity = max(1, capacity)
    }

    public enum Offer: Equatable, Sendable {
        /// Write the line; `scheduleHandOver`: the first line since the last hand-over, so the
        /// shell schedules one.
        case append(scheduleHandOver: Bool)
        /// Full: do not build the line.
        case drop
    }

    /// A request matched the tap.
    public mutating func offer() -> Offer {
        guard pending < capacity else {
            dropped += 1
            return .drop
        }
        pending += 1
        if handOverScheduled { return .append(scheduleHandOver: false) }
        handOverScheduled = true
        return .append(scheduleHandOver: true)
    }

    /// The scheduled hand-over runs: the shell sends its bytes along with `dropped`.
    public mutating func handOver() -> (lines: Int, dropped: Int) {
        let batch = (pending, dropped)
        pending = 0
        dropped = 0
        handOverScheduled = false
        return batch
    }
}
