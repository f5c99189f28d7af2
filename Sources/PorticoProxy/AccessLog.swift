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
    // @unchecked: `pending`, `stopped` and `finished` are guarded by `condition`, a lock the
    // compiler cannot connect to them; `fileDescriptor` is immutable.
    private let fileDescriptor: Int32
    private let condition = ConditionLock(value: 0)
    private var pending: [ByteBuffer] = []
    private var stopped = false
    private var started = false
    /// Resumed by the writer thread once it has written its last line.
    private var finished: CheckedContinuation<Void, Never>?
    private var threadDone = false

    private static let hasWork = 1
    private static let idle = 0

    public init(fileDescriptor: Int32 = 1) {
        self.fileDescriptor = fileDescriptor
    }

    public func start() {
        condition.lock()
        let first = !started
        started = true
        condition.unlock()
        guard first else { return }
        WriterThread.detach { [self] in self.runLoop() }
    }

    func submit(_ buffer: ByteBuffer) {
        condition.lock()
        pending.append(buffer)
        condition.unlock(withValue: Self.hasWork)
    }

    /// Writes out whatever is queued, then stops the thread; returns once the last line is
    /// written. It waits without blocking a thread: a full pipe on stdout must not hold one
    /// of the few threads the async runtime has.
    public func stop() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            condition.lock()
            stopped = true
            if !started || threadDone {
                condition.unlock(withValue: Self.hasWork)
                continuation.resume()
            } else {
                finished = continuation
                condition.unlock(withValue: Self.hasWork)
            }
        }
    }

    private func runLoop() {
        while true {
            condition.lock(whenValue: Self.hasWork)
            let batch = pending
            pending.removeAll(keepingCapacity: true)
            let shouldStop = stopped
            condition.unlock(withValue: Self.idle)
            for buffer in batch { write(buffer) }
            if shouldStop { break }
        }
        condition.lock()
        threadDone = true
        let finished = self.finished
        self.finished = nil
        condition.unlock()
        finished?.resume()
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

/// A detached thread of its own for the writer: it may block in write(2) for as long as the
/// reader of the log takes, which no event loop or async-runtime thread may.
private enum WriterThread {
    static func detach(_ body: @escaping @Sendable () -> Void) {
        final class Box {
            let body: @Sendable () -> Void
            init(_ body: @escaping @Sendable () -> Void) { self.body = body }
        }
        var handle = pthread_t()
        let box = Unmanaged.passRetained(Box(body))
        let result = pthread_create(&handle, nil, { raw in
            let box = Unmanaged<Box>.fromOpaque(raw!).takeRetainedValue()
            box.body()
            return nil
        }, box.toOpaque())
        precondition(result == 0, "cannot start the access-log thread: \(result)")
        pthread_detach(handle)
    }
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
            eventLoop.assumeIsolated().scheduleTask(in: .milliseconds(100)) { [self] in
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
        // Most values (paths, names) need no escape: one copy, not a write per byte.
        let copied = value.utf8.withContiguousStorageIfAvailable { bytes -> Bool in
            for byte in bytes where byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") {
                return false
            }
            writeBytes(UnsafeRawBufferPointer(bytes))
            return true
        } ?? false
        if copied {
            writeInteger(UInt8(ascii: "\""))
            return
        }
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
