import Logging
import NIOConcurrencyHelpers
@testable import PorticoProxy
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// The gateway's log handler writes what swift-log's `StreamLogHandler` writes (tests, the
/// benchmark and people's scripts read those lines): the same events through both, compared.
final class LineLogHandlerTests: XCTestCase {
    /// What a `StreamLogHandler` writes, kept.
    private final class Captured: TextOutputStream, @unchecked Sendable {
        // `@unchecked Sendable`: written and read by this test's thread only.
        var text = ""
        func write(_ string: String) { text += string }
    }

    private struct CapturingStream: TextOutputStream, Sendable {
        let captured: Captured
        func write(_ string: String) { captured.write(string) }
    }

    /// Everything that can be read from `fd` now (it is non-blocking).
    private func drain(_ fd: Int32) -> String {
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = read(fd, &chunk, chunk.count)
            guard count > 0 else { break }
            bytes += chunk[0..<count]
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    private struct Failure: Error, CustomStringConvertible {
        var description: String { "the disk is full" }
    }

    func testItWritesWhatStreamLogHandlerWrites() throws {
        var ends: [Int32] = [-1, -1]
        XCTAssertEqual(pipe(&ends), 0)
        XCTAssertEqual(fcntl(ends[0], F_SETFL, O_NONBLOCK), 0)
        defer { close(ends[0]); close(ends[1]) }
        let provider = Logger.MetadataProvider { ["trace": "t-1"] }
        let captured = Captured()
        let events: [(Logger.Level, Logger.Message, Logger.Metadata?, (any Error)?)] = [
            (.info, "worker ready", ["function": "hello", "us_to_ready": "812", "probe": "supervisor"], nil),
            (.warning, "no metadata of its own", nil, nil),
            (.error, "write failed", ["path": "/tmp/x y"], Failure()),
            (.debug, "nested", ["list": ["a", "b"], "map": ["k": "v"]], nil),
        ]
        // Both in the same second, or the timestamps differ: tried again if the second turns.
        var attempts = 0
        repeat {
            attempts += 1
            _ = drain(ends[0])
            captured.text = ""
            let second = time(nil)
            for (label, withProvider) in [("portico", false), ("", false), ("portico", true)] {
                var line = LineLogHandler(label: label, descriptor: ends[1], metadataProvider: withProvider ? provider : nil)
                var stream = StreamLogHandler(label: label, stream: CapturingStream(captured: captured),
                                              metadataProvider: withProvider ? provider : nil)
                line.logLevel = .trace
                stream.logLevel = .trace
                line[metadataKey: "listener"] = "plain"
                stream[metadataKey: "listener"] = "plain"
                for (level, message, metadata, error) in events {
                    let event = LogEvent(level: level, message: message, error: error, metadata: metadata, source: "PorticoProxy",
                                         file: #fileID, function: #function, line: #line)
                    line.log(event: event)
                    stream.log(event: event)
                }
            }
            if time(nil) == second { break }
        } while attempts < 5
        let written = drain(ends[0])
        XCTAssertEqual(written.split(separator: "\n").count, 12)
        XCTAssertEqual(written, captured.text)
        XCTAssertTrue(written.contains(" error portico: error.message=the disk is full error.type="), written)
    }
}
