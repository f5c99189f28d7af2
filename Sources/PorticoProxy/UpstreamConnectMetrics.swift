import Glibc
import NIOCore
import NIOPosix
import NIOSSL
import Prometheus

/// One pool's view of `portico_upstream_connect_*`: its attempts, their duration and their
/// failures, labelled with the service (or `function:NAME`) the pool serves.
///
/// Recorded per connect, never per request; the series are looked up once, when the pool is
/// made, except a failure's, which is looked up when it happens (failures are rare, and the
/// registry's lock is fine there).
struct UpstreamConnectMetrics {
    let service: String
    let attempts: Counter
    let duration: DurationHistogram
    private let metrics: GatewayMetrics

    init(metrics: GatewayMetrics, service: String) {
        self.service = service
        self.metrics = metrics
        self.attempts = metrics.upstreamConnectAttemptCounter(service: service)
        self.duration = metrics.upstreamConnectDurationHistogram(service: service)
    }

    /// A connect starts: count it, and return when it started.
    func started() -> NIODeadline {
        attempts.increment()
        return .now()
    }

    /// The connection is usable (connected, and TLS and HTTP/2 settings done where used).
    func succeeded(since start: NIODeadline) {
        duration.recordNanoseconds(Int64(truncatingIfNeeded: (NIODeadline.now() - start).nanoseconds))
    }

    func failed(_ error: Error) {
        metrics.upstreamConnectFailureCounter(service: service, reason: Self.reason(for: error)).increment()
    }

    /// `timeout`, `refused`, `tls` or `other`: what an operator acts on differently (a slow or
    /// dead host; nothing listening; certificates or protocol; the rest).
    static func reason(for error: Error) -> String {
        switch error {
        case ChannelError.connectTimeout, UpstreamTLSError.handshakeTimeout:
            return "timeout"
        case UpstreamTLSError.nameMismatch, UpstreamTLSError.protocolNotNegotiated, UpstreamTLSError.closedDuringHandshake,
             is NIOSSLError, is BoringSSLError:
            return "tls"
        case let error as IOError where error.errnoCode == ECONNREFUSED:
            return "refused"
        case let error as NIOConnectionError:
            // Every address tried failed: the last one's error says why.
            if let last = error.connectionErrors.last { return reason(for: last.error) }
            return "other"
        default:
            return "other"
        }
    }
}
