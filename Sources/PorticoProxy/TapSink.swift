import NIOCore

/// Where a tap's batches go: a function run on the tap connection's event loop.
struct TapSink: Sendable {
    let eventLoop: EventLoop
    /// The batch's bytes (whole server-sent events), its line count, and the lines its loop dropped.
    let receive: @Sendable (ByteBuffer, _ lines: Int, _ dropped: Int) -> Void
}
