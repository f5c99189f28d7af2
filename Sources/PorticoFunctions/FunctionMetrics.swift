import Prometheus

/// The metric series of one function, registered in the gateway's registry.
final class FunctionMetrics: Sendable {
    let coldStarts: Counter
    let coldStartDuration: DurationHistogram
    let queueLength: Gauge
    let ejections: Counter
    private let starting: Gauge
    private let ready: Gauge
    private let draining: Gauge
    /// For the series of each revision (`FunctionRevisionMetrics`).
    let registry: PrometheusCollectorRegistry
    /// Exec mode's processes, one per request.
    private let running: Gauge

    /// Cold starts span a millisecond (a native worker) to seconds (a heavy runtime).
    static let coldStartBuckets: [Duration] = [
        .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(25),
        .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1),
        .seconds(2), .seconds(5), .seconds(10),
    ]

    init(function: String, registry: PrometheusCollectorRegistry) {
        self.registry = registry
        let label = [("function", function)]
        coldStarts = registry.makeCounter(
            descriptor: .init(metricName: "portico_function_cold_starts", unitName: "total",
                              helpText: "Requests that had to wait for a worker to start."),
            labels: label)
        coldStartDuration = registry.makeDurationHistogram(
            descriptor: .init(metricName: "portico_function_cold_start", unitName: "seconds",
                              helpText: "From a cold request's arrival to its worker being ready."),
            labels: label, buckets: Self.coldStartBuckets)
        queueLength = registry.makeGauge(
            descriptor: .init(metricName: "portico_function_queue", unitName: "length",
                              helpText: "Requests waiting for a worker."),
            labels: label)
        // The series services use, labelled as the function's requests are (`function:NAME`).
        ejections = registry.makeCounter(
            descriptor: .init(metricName: "portico_outlier_ejections", unitName: "total",
                              helpText: "Service endpoints and function workers ejected by outlier detection."),
            labels: [("service", "function:" + function)])
        func workers(_ state: String) -> Gauge {
            registry.makeGauge(
                descriptor: .init(metricName: "portico_function", unitName: "workers",
                                  helpText: "Worker processes by state."),
                labels: [("function", function), ("state", state)])
        }
        starting = workers("starting")
        ready = workers("ready")
        draining = workers("draining")
        running = workers("running")
    }

    /// An exec-mode function's processes running now, and the requests waiting for one.
    func setRunning(_ processes: Int, waiting: Int) {
        running.set(Double(processes))
        queueLength.set(Double(waiting))
    }

    func setWorkers(starting: Int, ready: Int, draining: Int) {
        self.starting.set(Double(starting))
        self.ready.set(Double(ready))
        self.draining.set(Double(draining))
    }
}
