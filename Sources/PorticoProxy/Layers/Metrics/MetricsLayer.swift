/// Counts every request and its duration, by route, backend and status (Prometheus).
final class MetricsLayer: RequestLayer {
    func exchangeEnded(_ ending: ExchangeEnding) {
        ending.loop.metrics.recordRequest(
            route: ending.record.route, backend: ending.record.backend, status: ending.status,
            nanoseconds: Int64(truncatingIfNeeded: ending.elapsedNanoseconds))
        if let grpcStatus = ending.grpcStatus {
            ending.loop.metrics.recordGRPC(route: ending.record.route, status: grpcStatus)
        }
    }
}
