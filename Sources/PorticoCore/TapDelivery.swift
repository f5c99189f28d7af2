/// One tap client's side of the stream, on its connection's event loop: batches of lines come
/// from every loop, and go out only while the client keeps up.
///
/// A batch that arrives while the connection cannot take more (its outbound buffer is past the
/// high-water mark) is dropped whole and counted; the next batch that goes out says how many
/// were lost since the last report. Pure: the shell reports writability and writes.
public struct TapDelivery: Sendable, Equatable {
    /// Lines written to the client.
    public private(set) var delivered = 0
    /// Lines lost in all, on the loops (outbox full) and here (client not reading).
    public private(set) var dropped = 0
    /// Lost since the client was last told.
    public private(set) var unreported = 0

    public init() {}

    public enum Action: Equatable, Sendable {
        /// Write the batch, after a note that `droppedBefore` lines were lost (nil: none).
        case write(droppedBefore: Int?)
        /// Do not write it: the client is not reading.
        case drop
    }

    /// A batch of `lines` arrived (`droppedOnLoop` lines of it were already lost on its loop).
    public mutating func batchArrived(lines: Int, droppedOnLoop: Int, writable: Bool) -> Action {
        dropped += droppedOnLoop
        unreported += droppedOnLoop
        guard writable else {
            dropped += lines
            unreported += lines
            return .drop
        }
        delivered += lines
        defer { unreported = 0 }
        return .write(droppedBefore: unreported > 0 ? unreported : nil)
    }
}
