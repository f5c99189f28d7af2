import NIOCore
import PorticoHTTP1

/// An admin response that stays open and carries server-sent events (`text/event-stream`):
/// the head goes without a length (chunked on HTTP/1.1, until the close on HTTP/1.0), each
/// write is flushed at once, and a comment every 15 s tells proxies and the idle timer that the
/// stream lives. It ends when the client goes away; then what it fed from is stopped.
final class AdminEventStream {
    private let context: ChannelHandlerContext
    private var heartbeat: Scheduled<Void>?
    private var onStop: [() -> Void] = []
    private(set) var isStopped = false
    /// Called when the client's connection can take more again, or no more.
    var onWritabilityChange: ((Bool) -> Void)?

    static let heartbeatInterval = TimeAmount.seconds(15)

    init(context: ChannelHandlerContext, request: RequestHead) {
        self.context = context
        let fields = HTTPFieldList([
            ("content-type", "text/event-stream; charset=utf-8"),
            ("cache-control", "no-cache"),
            // Asks a buffering proxy in front (nginx) to pass each event on as it comes.
            ("x-accel-buffering", "no"),
        ])
        let head = ResponseHead(status: 200, version: request.version, fields: fields)
        context.write(NIOAny(ResponsePart.head(head)), promise: nil)
        context.flush()
        scheduleHeartbeat()
    }

    private func scheduleHeartbeat() {
        heartbeat = context.eventLoop.assumeIsolated().scheduleTask(in: Self.heartbeatInterval) { [self] in
            guard !self.isStopped else { return }
            // Dropped rather than queued behind a client that does not read.
            if self.isWritable { self.write(": keep-alive\n\n") }
            self.scheduleHeartbeat()
        }
    }

    /// Whether the client's connection takes more now (its outbound buffer is under the
    /// high-water mark).
    var isWritable: Bool { !isStopped && context.channel.isWritable }

    func whenStopped(_ body: @escaping () -> Void) {
        if isStopped { body() } else { onStop.append(body) }
    }

    func write(_ text: String) {
        var buffer = context.channel.allocator.buffer(capacity: text.utf8.count)
        buffer.writeString(text)
        write(buffer)
    }

    func write(_ buffer: ByteBuffer) {
        guard !isStopped else { return }
        context.writeAndFlush(NIOAny(ResponsePart.body(buffer)), promise: nil)
    }

    func writabilityChanged(_ writable: Bool) {
        onWritabilityChange?(writable)
    }

    /// The client went away (or the stream must end): stops the heartbeat and what fed it.
    func stop() {
        guard !isStopped else { return }
        isStopped = true
        heartbeat?.cancel()
        heartbeat = nil
        let stops = onStop
        onStop = []
        onWritabilityChange = nil
        for body in stops { body() }
    }
}
