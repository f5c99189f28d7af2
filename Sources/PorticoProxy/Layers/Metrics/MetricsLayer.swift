/// Counts every request and its duration, by route, backend and status (Prometheus); the same
/// duration in OpenTelemetry's shape; and, for the answers the gateway gave itself, why.
final class MetricsLayer: RequestLayer {
    func exchangeEnded(_ ending: ExchangeEnding) {
        let metrics = ending.loop.metrics
        let route = ending.record.route
        let nanoseconds = Int64(truncatingIfNeeded: ending.elapsedNanoseconds)
        metrics.recordRequest(route: route, backend: ending.record.backend, status: ending.status, nanoseconds: nanoseconds)
        metrics.recordServerDuration(route: route, status: ending.status, http2: !ending.connection.isHTTP1,
                                     nanoseconds: nanoseconds)
        if let reason = ending.localReply {
            metrics.recordLocalReply(route: route, status: ending.status, reason: reason)
        }
        if let grpcStatus = ending.grpcStatus {
            metrics.recordGRPC(route: route, status: grpcStatus)
        }
    }
}
