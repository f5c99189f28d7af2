import Prometheus

/// A revision's cold-start series, labelled with the function and its revision, named after
/// OpenTelemetry's FaaS semantic conventions where they fit (`faas.coldstarts`,
/// `faas.init_duration`, in Prometheus form), plus the phases of a start and the wait for a
/// worker, which the conventions do not name. Unregistered when the revision is gone.
final class FunctionRevisionMetrics: Sendable {
    /// Requests that waited for a worker to start (OpenTelemetry's `faas.coldstarts`).
    let coldStarts: Counter
    /// A worker's start, from asking for it to ready (OpenTelemetry's `faas.init_duration`).
    let initDuration: DurationHistogram
    let spawn: DurationHistogram
    let startToReady: DurationHistogram
    /// A cold request's first answer from the worker it waited for.
    let firstResponse: DurationHistogram
    /// Every request's wait for a worker: zero, or the queue, or a cold start.
    let wait: DurationHistogram
    private let registry: PrometheusCollectorRegistry

    /// From tens of microseconds (a fork, a warm worker's wait) to seconds.
    static let buckets: [Duration] = [
        .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2),
        .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100),
        .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2), .seconds(5), .seconds(10),
    ]

    init(function: String, revision: String, registry: PrometheusCollectorRegistry) {
        self.registry = registry
        let labels = [("function", function), ("revision", revision)]
        coldStarts = registry.makeCounter(
            descriptor: .init(metricName: "faas_coldstarts", unitName: "total",
                              helpText: "Requests that waited for a worker to start (OpenTelemetry faas.coldstarts)."),
            labels: labels)
        initDuration = registry.makeDurationHistogram(
            descriptor: .init(metricName: "faas_init_duration", unitName: "seconds",
                              helpText: "A worker's start, from asking for it to ready (OpenTelemetry faas.init_duration)."),
            labels: labels, buckets: Self.buckets)
        func phase(_ name: String) -> DurationHistogram {
            registry.makeDurationHistogram(
                descriptor: .init(metricName: "portico_function_cold_start_phase", unitName: "seconds",
                                  helpText: "The phases of a cold start: spawn (or fork), start_to_ready, first_response."),
                labels: labels + [("phase", name)], buckets: Self.buckets)
        }
        spawn = phase("spawn")
        startToReady = phase("start_to_ready")
        firstResponse = phase("first_response")
        wait = registry.makeDurationHistogram(
            descriptor: .init(metricName: "portico_function_worker_wait", unitName: "seconds",
                              helpText: "How long a request waited for a worker."),
            labels: labels, buckets: Self.buckets)
    }

    func unregister() {
        registry.unregisterCounter(coldStarts)
        for histogram in [initDuration, spawn, startToReady, firstResponse, wait] {
            registry.unregisterDurationHistogram(histogram)
        }
    }
}
