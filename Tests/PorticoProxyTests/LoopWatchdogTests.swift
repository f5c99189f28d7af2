import Foundation
import Logging
import NIOCore
import NIOPosix
import Prometheus
import XCTest

@testable import PorticoProxy

/// The watchdog finds a proxy loop that is held, says what its thread is doing while it is, and
/// counts and logs the hold once the loop runs again.
final class LoopWatchdogTests: XCTestCase {
    func testABlockedLoopIsReportedWithItsSystemCallAndCountedOnceItRuns() throws {
        let proxyGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let adminGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer {
            try? proxyGroup.syncShutdownGracefully()
            try? adminGroup.syncShutdownGracefully()
        }
        let log = CapturedLog()
        let registry = PrometheusCollectorRegistry()
        let watchdog = LoopWatchdog(watching: [proxyGroup.next()], on: adminGroup.next(), registry: registry,
                                    logger: Logger(label: "watchdog-test") { _ in CapturingLogHandler(log: log) })
        watchdog.start()
        defer { try? watchdog.stop().wait() }
        // The watchdog learns the loop's thread from a task it queues there as it starts.
        try adminGroup.next().submit {}.wait()
        try proxyGroup.next().submit {}.wait()

        // The loop blocks in a read of a pipe until the test writes to it.
        var ends: [Int32] = [-1, -1]
        XCTAssertEqual(pipe(&ends), 0)
        defer { close(ends[0]); close(ends[1]) }
        let readEnd = ends[0]
        proxyGroup.next().execute {
            var byte: UInt8 = 0
            _ = read(readEnd, &byte, 1)
        }
        XCTAssertTrue(log.waitFor("event loop blocked"), "reported while it is held")
        let blocked = log.first(containing: "event loop blocked") ?? ""
        #if arch(x86_64)
        // read is system call 0 there; its first argument the pipe's descriptor.
        XCTAssertTrue(blocked.contains("syscall 0 0x\(String(readEnd, radix: 16))"), blocked)
        #endif
        XCTAssertTrue(blocked.contains("fd \(readEnd) pipe:"), blocked)
        XCTAssertFalse(log.contains("event loop ran again"))
        XCTAssertTrue(registry.emitToString().contains(#"portico_event_loop_misses_total{kind="mega_miss"} 1"#),
                      "counted while the loop is still held")

        var byte: UInt8 = 1
        XCTAssertEqual(write(ends[1], &byte, 1), 1)
        XCTAssertTrue(log.waitFor("event loop ran again"), "reported when it runs again")
        let ran = log.first(containing: "event loop ran again") ?? ""
        let heldFor = ran.split(separator: " ").first { $0.hasPrefix("blocked_ms=") }.flatMap { Int($0.dropFirst(11)) } ?? 0
        XCTAssertGreaterThanOrEqual(heldFor, 1000, ran)
        let metrics = registry.emitToString()
        XCTAssertTrue(metrics.contains(#"portico_event_loop_misses_total{kind="mega_miss"} 1"#), metrics)
        XCTAssertTrue(metrics.contains(#"portico_event_loop_misses_total{kind="miss"} 1"#), metrics)
    }
}
