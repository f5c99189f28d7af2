import NIOConcurrencyHelpers
import Prometheus

/// What one bound `tcp:` listener keeps across its connections and event loops: its metric
/// series, looked up once, and its count of open connections for `maxConnections`.
///
/// The count takes a lock when a connection opens and when it closes, never per byte.
final class TCPListenerState: Sendable {
    let name: String
    let metrics: GatewayMetrics
    let connections: Counter
    let active: Gauge
    let receivedBytes: Counter
    let sentBytes: Counter
    let rejected: Counter
    private let open = NIOLockedValueBox(0)

    init(name: String, metrics: GatewayMetrics) {
        self.name = name
        self.metrics = metrics
        let registry = metrics.registry
        let labels = [("listener", name)]
        connections = registry.makeCounter(
            descriptor: .init(metricName: "portico_tcp_connections", unitName: "total",
                              helpText: "Connections accepted by a tcp listener (and not refused by its maxConnections)."),
            labels: labels)
        active = registry.makeGauge(
            descriptor: .init(metricName: "portico_tcp_active", unitName: "connections",
                              helpText: "Open connections of a tcp listener."),
            labels: labels)
        receivedBytes = registry.makeCounter(
            descriptor: .init(metricName: "portico_tcp_received_bytes", unitName: "total",
                              helpText: "Bytes a tcp listener received from its clients."),
            labels: labels)
        sentBytes = registry.makeCounter(
            descriptor: .init(metricName: "portico_tcp_sent_bytes", unitName: "total",
                              helpText: "Bytes a tcp listener sent to its clients."),
            labels: labels)
        rejected = registry.makeCounter(
            descriptor: .init(metricName: "portico_tcp_rejected_connections", unitName: "total",
                              helpText: "Connections a tcp listener closed at once because maxConnections were open."),
            labels: labels)
    }

    /// Failed connects to a service's endpoints from this listener (refused, unreachable, timed out).
    func connectFailureCounter(service: String) -> Counter {
        metrics.registry.makeCounter(
            descriptor: .init(metricName: "portico_tcp_connect_failures", unitName: "total",
                              helpText: "Failed connects from a tcp listener to a service's endpoints."),
            labels: [("listener", name), ("service", service)])
    }

    /// Counts a new connection in, unless `limit` are open already.
    func admit(limit: Int?) -> Bool {
        let admitted = open.withLockedValue { open -> Bool in
            if let limit, open >= limit { return false }
            open += 1
            return true
        }
        if admitted {
            connections.increment()
            active.increment()
        } else {
            rejected.increment()
        }
        return admitted
    }

    func connectionClosed() {
        open.withLockedValue { $0 -= 1 }
        active.decrement()
    }
}
