import Foundation
import Logging

/// The lines logged through a `CapturingLogHandler` (message, then its metadata as `key=value`),
/// so a test can wait for one.
final class CapturedLog: @unchecked Sendable {
    // `@unchecked Sendable`: `lines` is guarded by `condition`.
    private let condition = NSCondition()
    private var lines: [String] = []

    func append(_ line: String) {
        condition.withLock {
            lines.append(line)
            condition.broadcast()
        }
    }

    func contains(_ text: String) -> Bool { condition.withLock { lines.contains { $0.contains(text) } } }
    func first(containing text: String) -> String? { condition.withLock { lines.first { $0.contains(text) } } }

    /// Waits until a line contains `text`, up to `timeout` seconds; whether one did.
    func waitFor(_ text: String, timeout: TimeInterval = 10) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        return condition.withLock {
            while !lines.contains(where: { $0.contains(text) }) {
                if !condition.wait(until: deadline) { return lines.contains { $0.contains(text) } }
            }
            return true
        }
    }
}

struct CapturingLogHandler: LogHandler {
    let log: CapturedLog
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let fields = (event.metadata ?? [:]).sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
        log.append(([event.message.description] + fields).joined(separator: " "))
    }
}
