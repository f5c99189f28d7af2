/// Envoy's defence against HTTP/2 clients that open streams and reset them at once (Rapid
/// Reset and its slower cousins): once a connection has seen `totalStreamCount` streams, and
/// more than half of them were reset by the client within `minStreamLifetime` of opening, the
/// connection is closed with GOAWAY (Envoy's overload settings
/// `premature_reset_total_stream_count`, 500, and `premature_reset_min_stream_lifetime_seconds`,
/// 1 s).
///
/// swift-nio-http2's own limit counts RST_STREAM frames in a window of time; this one counts
/// the share of streams that did no work, whatever the pace. Pure: times in, a verdict out.
public struct PrematureResetBudget: Sendable, Equatable {
    public struct Configuration: Sendable, Equatable {
        public var minStreamLifetimeNanoseconds: UInt64
        public var totalStreamCount: Int

        public init(minStreamLifetimeNanoseconds: UInt64 = 1_000_000_000, totalStreamCount: Int = 500) {
            self.minStreamLifetimeNanoseconds = minStreamLifetimeNanoseconds
            self.totalStreamCount = totalStreamCount
        }
    }

    public enum Verdict: Sendable, Equatable {
        case fine
        /// Send GOAWAY (ENHANCE_YOUR_CALM) and close the connection.
        case closeConnection
    }

    public let configuration: Configuration
    public private(set) var streams = 0
    public private(set) var prematureResets = 0

    public init(configuration: Configuration = Configuration()) {
        self.configuration = configuration
    }

    /// A client stream opened.
    public mutating func streamOpened() {
        streams += 1
    }

    /// The client reset a stream it opened at `openedAt` (monotonic nanoseconds), at `now`.
    /// Streams that ended normally, or that the gateway reset, are not the client's doing.
    public mutating func clientReset(openedAt: UInt64, now: UInt64) -> Verdict {
        if now &- openedAt < configuration.minStreamLifetimeNanoseconds { prematureResets += 1 }
        guard streams >= configuration.totalStreamCount, prematureResets * 2 > streams else { return .fine }
        return .closeConnection
    }
}
