import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import Prometheus

#if canImport(Glibc)
import Glibc
#endif

/// Envoy's guard dog for Portico's event loops: every request of a loop waits while that loop
/// is blocked, so a blocked loop is the worst thing that can happen to a gateway short of a crash.
///
/// Four times a second it hands each loop a task that stamps the time it ran. A task still
/// waiting after 200 ms is a miss, after 1 s a mega-miss (Envoy's defaults): each is counted
/// as the wait crosses it (`portico_event_loop_misses_total{kind}`), and a mega-miss is
/// logged while it lasts, with what the loop's thread is doing then (its system call and the
/// file it is on, or its kernel wait), and again once the loop runs, with how long it was
/// held. It runs on the admin loop, and costs a proxy loop four wake-ups a second.
///
/// `@unchecked Sendable`: `watched` is touched only on `loop` (the admin loop); each entry's
/// `box` is the only state a proxy loop writes, and it is a lock of its own per loop.
final class LoopWatchdog: @unchecked Sendable {
    static let interval: TimeAmount = .milliseconds(250)
    static let miss: TimeAmount = .milliseconds(200)
    static let megaMiss: TimeAmount = .seconds(1)

    private struct Stamps {
        var ranAt: NIODeadline = .uptimeNanoseconds(0)
        var thread: pid_t = 0
    }

    private struct Watched {
        let index: Int
        let eventLoop: EventLoop
        let box = NIOLockedValueBox(Stamps())
        var sentAt: NIODeadline?
        /// What the task queued at `sentAt` has been counted as so far.
        var countedMiss = false
        var countedMegaMiss = false
    }

    private let loop: EventLoop
    private let logger: Logger
    private let misses: Counter
    private let megaMisses: Counter
    private var watched: [Watched]
    private var task: RepeatedTask?

    init(watching eventLoops: [EventLoop], on loop: EventLoop, registry: PrometheusCollectorRegistry, logger: Logger) {
        self.loop = loop
        self.logger = logger
        self.watched = eventLoops.enumerated().map { Watched(index: $0.offset, eventLoop: $0.element) }
        let descriptor = MetricNameDescriptor(
            metricName: "portico_event_loop_misses", unitName: "total",
            helpText: "Times an event loop did not run a task within 200 ms (miss) or 1 s (mega_miss) of its being queued.")
        misses = registry.makeCounter(descriptor: descriptor, labels: [("kind", "miss")])
        megaMisses = registry.makeCounter(descriptor: descriptor, labels: [("kind", "mega_miss")])
    }

    func start() {
        loop.execute { [self] in
            guard task == nil else { return }
            for entry in watched {
                let box = entry.box
                entry.eventLoop.execute { box.withLockedValue { $0.thread = Self.currentThreadID() } }
            }
            task = loop.scheduleRepeatedTask(initialDelay: Self.interval, delay: Self.interval) { [self] _ in check() }
        }
    }

    /// Stops checking; the future completes once no check can run any more, so the watched
    /// loops may shut down then.
    func stop() -> EventLoopFuture<Void> {
        loop.submit { [self] in
            task?.cancel()
            task = nil
        }
    }

    private func check() {
        let now = NIODeadline.now()
        for i in watched.indices {
            let stamps = watched[i].box.withLockedValue { $0 }
            if let sentAt = watched[i].sentAt {
                let ran = stamps.ranAt >= sentAt
                // Counted as the wait crosses each threshold (as Envoy's guard dog does), so that
                // a loop stuck for good is counted too.
                let waited = (ran ? stamps.ranAt : now) - sentAt
                if waited >= Self.miss && !watched[i].countedMiss {
                    watched[i].countedMiss = true
                    misses.increment()
                }
                if waited >= Self.megaMiss && !watched[i].countedMegaMiss {
                    watched[i].countedMegaMiss = true
                    megaMisses.increment()
                    if !ran {
                        logger.warning("event loop blocked", metadata: [
                            "loop": .stringConvertible(watched[i].index),
                            "ms": .stringConvertible(waited.nanoseconds / 1_000_000),
                            "thread": .string(Self.whatThreadDoes(stamps.thread)),
                        ])
                    }
                }
                guard ran else { continue }
                if watched[i].countedMegaMiss {
                    logger.warning("event loop ran again", metadata: [
                        "loop": .stringConvertible(watched[i].index),
                        "blocked_ms": .stringConvertible(waited.nanoseconds / 1_000_000),
                    ])
                }
            }
            watched[i].sentAt = now
            watched[i].countedMiss = false
            watched[i].countedMegaMiss = false
            let box = watched[i].box
            watched[i].eventLoop.execute {
                box.withLockedValue { $0.ranAt = .now() }
            }
        }
    }

    /// The calling thread's kernel id, from `/proc/thread-self` (Swift cannot call the
    /// variadic `syscall`). Read once per loop.
    static func currentThreadID() -> pid_t {
        var path = [CChar](repeating: 0, count: 64)
        let length = readlink("/proc/thread-self", &path, path.count - 1)
        guard length > 0 else { return 0 }
        let text = String(decoding: path[0..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return text.split(separator: "/").last.flatMap { pid_t($0) } ?? 0
    }

    /// What a thread of this process is doing, from /proc: its system call (number, then the
    /// file behind its first argument when that is a descriptor) or "running", and its kernel
    /// wait channel.
    static func whatThreadDoes(_ thread: pid_t) -> String {
        guard thread != 0 else { return "unknown" }
        let base = "/proc/self/task/\(thread)/"
        let call = (try? String(contentsOfFile: base + "syscall", encoding: .utf8))?
            .trimmingCharacters(in: .whitespacesAndNewlines) ?? "?"
        let wait = (try? String(contentsOfFile: base + "wchan", encoding: .utf8)) ?? "?"
        let parts = call.split(separator: " ")
        var text = "syscall \(parts.prefix(3).joined(separator: " ")) wchan \(wait)"
        if parts.count > 1, parts[0] != "running", let fd = Int(parts[1].dropFirst(2), radix: 16), fd < 1 << 20,
           let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/\(fd)") {
            text += " fd \(fd) \(target)"
        }
        return text
    }
}
