import NIOConcurrencyHelpers
import NIOCore

#if canImport(Glibc)
import Glibc
private let systemWrite = Glibc.write
#elseif canImport(Musl)
import Musl
private let systemWrite = Musl.write
#elseif canImport(Darwin)
import Darwin
private let systemWrite = Darwin.write
#endif

/// Writes access-log lines to a file descriptor (stdout by default) on a thread of its own, so
/// a slow terminal or a full pipe never blocks an event loop.
///
/// Event loops do not call it per request: each loop batches lines in its `AccessLogBatch` and
/// hands over a whole buffer at a time.
public final class AccessLogWriter: @unchecked Sendable {
    private let fileDescriptor: Int32
    private let condition = ConditionLock(value: 0)
    // Guarded by `condition`.
    private var pending: [ByteBuffer] = []
    private var stopped = false
    private var thread: Thread?

    private static let hasWork = 1
    private static let idle = 0

    public init(fileDescriptor: Int32 = 1) {
        self.fileDescriptor = fileDescriptor
    }

    public func start() {
        let thread = Thread { [self] in self.runLoop() }
        self.thread = thread
        thread.start()
    }

    func submit(_ buffer: ByteBuffer) {
        condition.lock()
        pending.append(buffer)
        condition.unlock(withValue: Self.hasWork)
    }

    /// Writes out whatever is queued, then stops the thread.
    public func stop() {
        condition.lock()
        stopped = true
        condition.unlock(withValue: Self.hasWork)
        thread?.join()
        thread = nil
    }

    private func runLoop() {
        while true {
            condition.lock(whenValue: Self.hasWork)
            let batch = pending
            pending.removeAll(keepingCapacity: true)
            let shouldStop = stopped
            condition.unlock(withValue: Self.idle)
            for buffer in batch { write(buffer) }
            if shouldStop { return }
        }
    }

    private func write(_ buffer: ByteBuffer) {
        buffer.withUnsafeReadableBytes { bytes in
            var offset = 0
            while offset < bytes.count {
                let written = systemWrite(fileDescriptor, bytes.baseAddress! + offset, bytes.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    return  // Nowhere left to report it: the log itself is the broken thing.
                }
                offset += written
            }
        }
    }
}

/// A minimal joinable thread; Foundation's `Thread` cannot be joined.
private final class Thread: @unchecked Sendable {
    private let body: () -> Void
    private var handle = pthread_t()

    init(_ body: @escaping () -> Void) { self.body = body }

    func start() {
        let box = Unmanaged.passRetained(self)
        pthread_create(&handle, nil, { raw in
            let thread = Unmanaged<Thread>.fromOpaque(raw!).takeRetainedValue()
            thread.body()
            return nil
        }, box.toOpaque())
    }

    func join() { pthread_join(handle, nil) }
}

/// One event loop's pending access-log lines, flushed to the writer every 100 ms or every 32 KiB.
final class AccessLogBatch {
    private let writer: AccessLogWriter
    private let eventLoop: EventLoop
    private var buffer: ByteBuffer
    private var flushScheduled = false

    init(writer: AccessLogWriter, eventLoop: EventLoop) {
        self.writer = writer
        self.eventLoop = eventLoop
        self.buffer = ByteBufferAllocator().buffer(capacity: 8192)
    }

    /// Appends one line; `build` writes the JSON object (without the newline).
    func append(_ build: (inout ByteBuffer) -> Void) {
        build(&buffer)
        buffer.writeInteger(UInt8(ascii: "\n"))
        if buffer.readableBytes >= 32 * 1024 {
            flush()
        } else if !flushScheduled {
            flushScheduled = true
            eventLoop.scheduleTask(in: .milliseconds(100)) { [self] in
                self.flushScheduled = false
                self.flush()
            }
        }
    }

    func flush() {
        guard buffer.readableBytes > 0 else { return }
        writer.submit(buffer)
        buffer = ByteBufferAllocator().buffer(capacity: 8192)
    }
}

extension ByteBuffer {
    /// Writes `value` as a JSON string literal, escaping what JSON requires.
    mutating func writeJSONString(_ value: String) {
        writeInteger(UInt8(ascii: "\""))
        for byte in value.utf8 {
            switch byte {
            case UInt8(ascii: "\""): writeStaticString("\\\"")
            case UInt8(ascii: "\\"): writeStaticString("\\\\")
            case UInt8(ascii: "\n"): writeStaticString("\\n")
            case UInt8(ascii: "\r"): writeStaticString("\\r")
            case UInt8(ascii: "\t"): writeStaticString("\\t")
            case 0..<0x20:
                writeStaticString("\\u00")
                writeInteger(Self.hexDigit(byte >> 4))
                writeInteger(Self.hexDigit(byte & 0xF))
            default: writeInteger(byte)
            }
        }
        writeInteger(UInt8(ascii: "\""))
    }

    /// Writes a non-negative integer in decimal without going through `String`.
    mutating func writeDecimal(_ value: Int) {
        if value < 10 {
            writeInteger(UInt8(ascii: "0") + UInt8(max(value, 0)))
            return
        }
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)
        var count = 0
        var remaining = value
        withUnsafeMutableBytes(of: &digits) { raw in
            while remaining > 0 && count < 24 {
                raw[23 - count] = UInt8(ascii: "0") + UInt8(remaining % 10)
                remaining /= 10
                count += 1
            }
            writeBytes(UnsafeRawBufferPointer(rebasing: raw[(24 - count)...]))
        }
    }

    static func hexDigit(_ nibble: UInt8) -> UInt8 {
        nibble < 10 ? UInt8(ascii: "0") + nibble : UInt8(ascii: "a") + nibble - 10
    }
}

/// Wall-clock time for log lines; `clock_gettime` is a vDSO call, with no Foundation formatting.
enum AccessClock {
    static func unixMilliseconds() -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return Int64(now.tv_sec) * 1000 + Int64(now.tv_nsec) / 1_000_000
    }
}
