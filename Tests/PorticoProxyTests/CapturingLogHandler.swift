import Foundation
import Logging

/// The lines logged through a `CapturingLogHandler` (message, then its metadata as `key=value`),
/// so a test can wait for one.
final class CapturedLog: @unchecked Sendable {
    // `@unchecked Sendable`: `lines` is guarded by `lock`.
    private let lock = NSLock()
    private var lines: [String] = []

    func append(_ line: String) { lock.withLock { lines.append(line) } }
    func contains(_ text: String) -> Bool { lock.withLock { lines.contains { $0.contains(text) } } }
    func first(containing text: String) -> String? { lock.withLock { lines.first { $0.contains(text) } } }
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
