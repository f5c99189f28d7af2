import NIOCore
#if canImport(Glibc)
import Glibc
#endif

/// One event loop's finished spans, encoded, on their way to the `TraceExporter`: handed over
/// every `exportInterval`, or sooner when many are waiting. Touched only from its loop.
final class TraceBatch {
    private let eventLoop: EventLoop
    private var spans: ByteBuffer
    private var count = 0
    private var scratch: ByteBuffer
    private var flushScheduled = false
    /// Wall-clock nanoseconds minus monotonic ones, read again at each handover: spans carry
    /// Unix times, requests keep `NIODeadline`s.
    private(set) var wallClockOffset: Int64
    /// A loop hands its spans over once this many are waiting, whatever the interval.
    static let handoverCount = 512

    init(eventLoop: EventLoop) {
        self.eventLoop = eventLoop
        spans = ByteBufferAllocator().buffer(capacity: 0)
        scratch = ByteBufferAllocator().buffer(capacity: 512)
        wallClockOffset = Self.currentWallClockOffset()
    }

    /// Unix-epoch nanoseconds of a monotonic instant.
    func wallClock(_ instant: NIODeadline) -> UInt64 {
        UInt64(truncatingIfNeeded: Int64(truncatingIfNeeded: instant.uptimeNanoseconds) &+ wallClockOffset)
    }

    /// Adds one span: `build` writes it with the builder it is given.
    func add(exporter: TraceExporter, interval: TimeAmount, _ build: (inout OTLPSpanBuilder) -> Void) {
        var builder = OTLPSpanBuilder(scratch: scratch)
        scratch = ByteBuffer()  // the builder holds the only reference: written in place
        build(&builder)
        if spans.capacity == 0 { spans.reserveCapacity(16 * 1024) }
        spans.writeLengthDelimitedHeader(2, length: builder.buffer.readableBytes)
        spans.writeImmutableBuffer(builder.buffer)
        scratch = builder.buffer
        count += 1
        if count >= Self.handoverCount {
            flush(to: exporter)
        } else if !flushScheduled {
            flushScheduled = true
            eventLoop.assumeIsolated().scheduleTask(in: interval) { [self] in
                flushScheduled = false
                flush(to: exporter)
            }
        }
    }

    func flush(to exporter: TraceExporter) {
        wallClockOffset = Self.currentWallClockOffset()
        guard count > 0 else { return }
        exporter.submit(spans, count: count)
        spans = ByteBufferAllocator().buffer(capacity: 16 * 1024)
        count = 0
    }

    private static func currentWallClockOffset() -> Int64 {
        var wall = timespec()
        clock_gettime(CLOCK_REALTIME, &wall)
        let monotonic = Int64(truncatingIfNeeded: NIODeadline.now().uptimeNanoseconds)
        return Int64(wall.tv_sec) * 1_000_000_000 + Int64(wall.tv_nsec) - monotonic
    }
}
