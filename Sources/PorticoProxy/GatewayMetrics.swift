import NIOConcurrencyHelpers
import PorticoCore
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

    /// OpenTelemetry's recommended boundaries for `http.server.request.duration` (semantic
    /// conventions, HTTP metrics), in seconds.
    static let openTelemetryDurationBuckets: [Duration] = [
        .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(75),
        .milliseconds(100), .milliseconds(250), .milliseconds(500), .milliseconds(750), .seconds(1),
        .milliseconds(2500), .seconds(5), .milliseconds(7500), .seconds(10),
    ]

    /// Connects take from tens of microseconds (loopback) to the connect timeout.
    static let connectBuckets: [Duration] = [
        .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2),
        .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100),
        .milliseconds(250), .milliseconds(500), .seconds(1), .milliseconds(2500), .seconds(5), .seconds(10),
    ]

    /// The snapshot's generation: 1 at start, one more for each reload and each function change.
    let configGeneration: Gauge
    /// When the config was last loaded successfully (at start, or by a reload), unix seconds.
    let configLastReload: Gauge
    let reloadSucceeded: Counter
    let reloadFailed: Counter
    /// The endpoint gauges last published, by service and endpoint, so that those of endpoints
    /// gone in a reload can be taken out (admin loop only; the lock is never on a request's path).
    let endpointGauges = NIOLockedValueBox<[EndpointGaugeKey: (healthy: Gauge, ejected: Gauge)]>([:])

    public init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
        self.registry = registry
        self.configGeneration = registry.makeGauge(
            descriptor: .init(metricName: "portico_config_generation",
                              helpText: "The running config's generation: 1 at start, one more per reload or function change."))
        self.configLastReload = registry.makeGauge(
            descriptor: .init(metricName: "portico_config_last_reload_success_timestamp", unitName: "seconds",
                              helpText: "When the config was last loaded successfully (at start or by a reload), unix seconds."))
        let reloads = MetricNameDescriptor(metricName: "portico_config_reloads", unitName: "total",
                                           helpText: "Config reloads by result (success, or failure: the running config kept serving).")
        self.reloadSucceeded = registry.makeCounter(descriptor: reloads, labels: [("result", "success")])
        self.reloadFailed = registry.makeCounter(descriptor: reloads, labels: [("result", "failure")])
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

    /// A config (the first, or a reload's) is serving now as `generation`.
    func configLoaded(generation: Int, byReload: Bool) {
        configGeneration.set(to: Double(generation))
        configLastReload.set(to: Double(AccessClock.unixMilliseconds()) / 1000)
        if byReload { reloadSucceeded.increment() }
    }

    /// Request duration in OpenTelemetry's shape (`http.server.request.duration`, in its
    /// Prometheus form): by route, status class and protocol version.
    func serverDurationHistogram(route: String, statusClass: String, protocolVersion: String) -> DurationHistogram {
        registry.makeDurationHistogram(
            descriptor: .init(metricName: "http_server_request_duration", unitName: "seconds",
                              helpText: "OpenTelemetry http.server.request.duration: time from request head to the end of the response."),
            labels: [("http_route", route), ("http_response_status_class", statusClass),
                     ("network_protocol_version", protocolVersion)],
            buckets: Self.openTelemetryDurationBuckets)
    }

    func localReplyCounter(route: String, status: Int, reason: LocalReplyReason) -> Counter {
        registry.makeCounter(
            descriptor: .init(metricName: "portico_local_replies", unitName: "total",
                              helpText: "Requests the gateway answered itself, by route, status and reason."),
            labels: [("route", route), ("status", String(status)), ("reason", reason.name)])
    }

    /// A listener's open client connections.
    func listenerConnections(listener: String) -> Gauge {
        registry.makeGauge(
            descriptor: .init(metricName: "portico_listener_active_connections",
                              helpText: "Open client connections, by listener."),
            labels: [("listener", listener)])
    }

    func tlsHandshakeFailureCounter(listener: String, reason: String) -> Counter {
        registry.makeCounter(
            descriptor: .init(metricName: "portico_tls_handshake_failures", unitName: "total",
                              helpText: "Client TLS handshakes that failed, by listener and reason."),
            labels: [("listener", listener), ("reason", reason)])
    }

    func upstreamConnectAttemptCounter(service: String) -> Counter {
        registry.makeCounter(
            descriptor: .init(metricName: "portico_upstream_connect_attempts", unitName: "total",
                              helpText: "Connections opened (or tried) to upstream endpoints, by service or function."),
            labels: [("service", service)])
    }

    func upstreamConnectFailureCounter(service: String, reason: String) -> Counter {
        registry.makeCounter(
            descriptor: .init(metricName: "portico_upstream_connect_failures", unitName: "total",
                              helpText: "Upstream connects that failed, by service or function and reason."),
            labels: [("service", service), ("reason", reason)])
    }

    func upstreamConnectDurationHistogram(service: String) -> DurationHistogram {
        registry.makeDurationHistogram(
            descriptor: .init(metricName: "portico_upstream_connect_duration", unitName: "seconds",
                              helpText: "Time to a usable upstream connection (TCP, then TLS and HTTP/2 settings where used), by service or function."),
            labels: [("service", service)],
            buckets: Self.connectBuckets)
    }

    func endpointHealthyGauge(service: String, endpoint: String) -> Gauge {
        registry.makeGauge(
            descriptor: .init(metricName: "portico_upstream_endpoint_healthy",
                              helpText: "1 when the endpoint passes its health checks (or has none), 0 when it failed them."),
            labels: [("service", service), ("endpoint", endpoint)])
    }

    func endpointEjectedGauge(service: String, endpoint: String) -> Gauge {
        registry.makeGauge(
            descriptor: .init(metricName: "portico_upstream_endpoint_ejected",
                              helpText: "1 while outlier detection keeps the endpoint out of the load balancer, else 0."),
            labels: [("service", service), ("endpoint", endpoint)])
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
    private var connects: [String: UpstreamConnectMetrics] = [:]

    /// The connect metrics of `owner`'s pools: looked up in the registry once per loop, not
    /// for every new pool (each cold start of a function makes one, for its worker's port).
    func connectMetrics(owner: String) -> UpstreamConnectMetrics {
        if let known = connects[owner] { return known }
        let made = UpstreamConnectMetrics(metrics: metrics, service: owner)
        connects[owner] = made
        return made
    }

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

    private struct ServerDurationKey: Hashable {
        var route: String
        var statusClass: Int
        var http2: Bool
    }

    private var serverDurations: [ServerDurationKey: DurationHistogram] = [:]

    /// `http_server_request_duration_seconds`: the label values are made once per label set.
    func recordServerDuration(route: String, status: Int, http2: Bool, nanoseconds: Int64) {
        let statusClass = (1...5).contains(status / 100) ? status / 100 : 0
        let key = ServerDurationKey(route: route, statusClass: statusClass, http2: http2)
        if let histogram = serverDurations[key] {
            histogram.recordNanoseconds(nanoseconds)
        } else {
            let histogram = metrics.serverDurationHistogram(
                route: route, statusClass: statusClass == 0 ? "other" : "\(statusClass)xx", protocolVersion: http2 ? "2" : "1.1")
            serverDurations[key] = histogram
            histogram.recordNanoseconds(nanoseconds)
        }
    }

    private struct LocalReplyKey: Hashable {
        var route: String
        var status: Int
        var reason: LocalReplyReason
    }

    private var localReplies: [LocalReplyKey: Counter] = [:]

    func recordLocalReply(route: String, status: Int, reason: LocalReplyReason) {
        let key = LocalReplyKey(route: route, status: status, reason: reason)
        if let counter = localReplies[key] {
            counter.increment()
        } else {
            let counter = metrics.localReplyCounter(route: route, status: status, reason: reason)
            localReplies[key] = counter
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
