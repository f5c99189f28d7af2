import Prometheus

/// The gateway's Prometheus metrics, registered once and shared by every event loop.
///
/// Looking a labelled series up in the registry takes its lock, so the hot path goes through a
/// per-loop `MetricsCache` instead and reaches the registry only the first time a label set is seen.
public final class GatewayMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry
    let downstreamConnections: Gauge
    let upstreamConnections: Gauge

    /// Latency buckets from 0.5 ms to 30 s: a gateway's requests span that whole range.
    static let durationBuckets: [Duration] = [
        .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10),
        .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250),
        .milliseconds(500), .seconds(1), .seconds(2), .seconds(5), .seconds(10), .seconds(30),
    ]

    public init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
        self.registry = registry
        self.downstreamConnections = registry.makeGauge(
            descriptor: .init(metricName: "portico_downstream", unitName: "connections",
                              helpText: "Open client connections."))
        self.upstreamConnections = registry.makeGauge(
            descriptor: .init(metricName: "portico_upstream", unitName: "connections",
                              helpText: "Open connections to upstream endpoints."))
    }

    func requestCounter(route: String, backend: String, code: String) -> Counter {
        registry.makeCounter(
            descriptor: .init(metricName: "portico_requests", unitName: "total",
                              helpText: "Requests answered, by route, backend and status code."),
            labels: [("route", route), ("backend", backend), ("code", code)])
    }

    func durationHistogram(route: String) -> DurationHistogram {
        registry.makeDurationHistogram(
            descriptor: .init(metricName: "portico_request_duration", unitName: "seconds",
                              helpText: "Time from request head to the end of the response."),
            labels: [("route", route)],
            buckets: Self.durationBuckets)
    }

    func grpcCounter(route: String, status: Int) -> Counter {
        registry.makeCounter(
            descriptor: .init(metricName: "portico_grpc_requests", unitName: "total",
                              helpText: "gRPC calls by route and grpc-status (the upstream's, or the gateway's own answer)."),
            labels: [("route", route), ("grpc_status", String(status))])
    }

    func retriesCounter(route: String) -> Counter {
        registry.makeCounter(
            descriptor: .init(metricName: "portico_retries", unitName: "total",
                              helpText: "Tries after the first one, by route."),
            labels: [("route", route)])
    }

    func rateLimitedCounter(policy: String) -> Counter {
        registry.makeCounter(
            descriptor: .init(metricName: "portico_rate_limited", unitName: "total",
                              helpText: "Requests refused with 429 by a rate limit policy."),
            labels: [("policy", policy)])
    }

    func authenticationFailureCounter(policy: String, reason: String) -> Counter {
        registry.makeCounter(
            descriptor: .init(metricName: "portico_authn_failures", unitName: "total",
                              helpText: "Requests refused with 401 by a jwt policy, by reason."),
            labels: [("policy", policy), ("reason", reason)])
    }

    func authorizationDeniedCounter(policy: String) -> Counter {
        registry.makeCounter(
            descriptor: .init(metricName: "portico_authz_denied", unitName: "total",
                              helpText: "Requests refused with 403 by an authorization policy."),
            labels: [("policy", policy)])
    }

    func outlierEjectionCounter(service: String) -> Counter {
        registry.makeCounter(
            descriptor: .init(metricName: "portico_outlier_ejections", unitName: "total",
                              helpText: "Service endpoints and function workers ejected by outlier detection."),
            labels: [("service", service)])
    }

    /// The Prometheus text exposition of every metric.
    public func render() -> [UInt8] {
        registry.emitToBuffer()
    }
}

/// One event loop's view of the metrics: the series it has touched, by label set.
final class MetricsCache {
    private struct CounterKey: Hashable {
        var route: String
        var backend: String
        var code: Int
    }

    let metrics: GatewayMetrics
    private var counters: [CounterKey: Counter] = [:]
    private var histograms: [String: DurationHistogram] = [:]
    private var retries: [String: Counter] = [:]

    func recordRetry(route: String) {
        if let counter = retries[route] {
            counter.increment()
        } else {
            let counter = metrics.retriesCounter(route: route)
            retries[route] = counter
            counter.increment()
        }
    }

    init(metrics: GatewayMetrics) {
        self.metrics = metrics
    }

    private var grpcCounters: [CounterKey: Counter] = [:]

    func recordGRPC(route: String, status: Int) {
        let key = CounterKey(route: route, backend: "", code: status)
        if let counter = grpcCounters[key] {
            counter.increment()
        } else {
            let counter = metrics.grpcCounter(route: route, status: status)
            grpcCounters[key] = counter
            counter.increment()
        }
    }

    func recordRequest(route: String, backend: String, status: Int, nanoseconds: Int64) {
        let key = CounterKey(route: route, backend: backend, code: status)
        if let counter = counters[key] {
            counter.increment()
        } else {
            let counter = metrics.requestCounter(route: route, backend: backend, code: String(status))
            counters[key] = counter
            counter.increment()
        }
        if let histogram = histograms[route] {
            histogram.recordNanoseconds(nanoseconds)
        } else {
            let histogram = metrics.durationHistogram(route: route)
            histograms[route] = histogram
            histogram.recordNanoseconds(nanoseconds)
        }
    }
}
