import Logging
import NIOConcurrencyHelpers

#if canImport(Glibc)
import Glibc
#endif

/// The gateway's log handler: swift-log's `StreamLogHandler` line, byte for byte
/// (`TIME LEVEL LABEL: k=v k=v [SOURCE] MESSAGE`, metadata sorted by key), written with one
/// `write(2)`.
///
/// `StreamLogHandler` costs a cold start about 20 µs a line, on the event loop: it formats
/// its timestamp with `localtime`, which checks the time zone file on every call, into a
/// fresh array, and writes through a locked `FILE` that it then flushes. Here the timestamp is
/// formatted once a second, and the line goes out in one system call, which also keeps lines
/// of different threads from interleaving (a pipe writes up to 4 KiB at once).
public struct LineLogHandler: LogHandler {
    public var logLevel: Logger.Level = .info
    public var metadataProvider: Logger.MetadataProvider?
    public var metadata = Logger.Metadata() {
        didSet { prettyMetadata = Self.prettify(metadata) }
    }

    private var prettyMetadata: String?
    private let label: String
    private let descriptor: Int32

    public init(label: String, descriptor: Int32 = STDERR_FILENO,
                metadataProvider: Logger.MetadataProvider? = LoggingSystem.metadataProvider) {
        self.label = label
        self.descriptor = descriptor
        self.metadataProvider = metadataProvider
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        let pretty = effectiveMetadata(event).map(Self.prettify) ?? prettyMetadata
        var line = Self.clock.now()
        line += " "
        line += event.level.rawValue
        if !label.isEmpty {
            line += " "
            line += label
        }
        line += ":"
        if let pretty {
            line += " "
            line += pretty
        }
        line += " ["
        line += event.source
        line += "] "
        line += event.message.description
        line += "\n"
        write(line)
    }

    /// What `StreamLogHandler.prepareMetadata` gives: nil when the event adds nothing to the
    /// handler's own metadata.
    private func effectiveMetadata(_ event: LogEvent) -> Logger.Metadata? {
        let provided = metadataProvider?.get() ?? [:]
        guard !provided.isEmpty || !(event.metadata ?? [:]).isEmpty || event.error != nil else { return nil }
        var merged = metadata
        if !provided.isEmpty { merged.merge(provided) { _, new in new } }
        if let explicit = event.metadata, !explicit.isEmpty { merged.merge(explicit) { _, new in new } }
        if let error = event.error {
            merged["error.message"] = "\(error)"
            merged["error.type"] = "\(String(reflecting: type(of: error)))"
        }
        return merged
    }

    private static func prettify(_ metadata: Logger.Metadata) -> String? {
        metadata.isEmpty ? nil : metadata.sorted { $0.key < $1.key }.map { "\($0)=\($1)" }.joined(separator: " ")
    }

    /// All of `line`, however many calls it takes; a descriptor that is full (non-blocking) is
    /// waited for, briefly, rather than the line lost.
    private func write(_ line: String) {
        var line = line
        line.withUTF8 { bytes in
            var offset = 0
            var waits = 0
            while offset < bytes.count {
                let written = Glibc.write(descriptor, bytes.baseAddress! + offset, bytes.count - offset)
                if written > 0 {
                    offset += written
                } else if written < 0, errno == EINTR {
                    continue
                } else if written < 0, errno == EAGAIN, waits < 10 {
                    waits += 1
                    var ready = pollfd(fd: descriptor, events: Int16(POLLOUT), revents: 0)
                    _ = poll(&ready, 1, 100)
                } else {
                    return
                }
            }
        }
    }

    static let clock = SecondClock()

    /// The local time as `StreamLogHandler` writes it (`%Y-%m-%dT%H:%M:%S%z`), formatted once
    /// per second.
    final class SecondClock: Sendable {
        private let last = NIOLockedValueBox<(second: time_t, text: String)>((-1, ""))

        func now() -> String {
            let second = time(nil)
            if let text = last.withLockedValue({ $0.second == second ? $0.text : nil }) { return text }
            var seconds = second
            var local = tm()
            var buffer = (0 as UInt64, 0 as UInt64, 0 as UInt64, 0 as UInt64, 0 as UInt64, 0 as UInt64, 0 as UInt64, 0 as UInt64)
            let text = withUnsafeMutableBytes(of: &buffer) { raw -> String in
                let characters = raw.baseAddress!.assumingMemoryBound(to: CChar.self)
                guard localtime_r(&seconds, &local) != nil,
                      strftime(characters, raw.count, "%Y-%m-%dT%H:%M:%S%z", &local) > 0 else { return "<unknown>" }
                return String(cString: characters)
            }
            last.withLockedValue { $0 = (second, text) }
            return text
        }
    }
}
