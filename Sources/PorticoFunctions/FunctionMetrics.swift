import NIOConcurrencyHelpers
import Prometheus

/// The metric series of one function, registered in the gateway's registry when the function
/// first has something to show (a worker starting, a request waiting, an exec process).
///
/// A function that never ran has no series: with a thousand idle functions, seven series each
/// (a histogram among them) were 2.9 MB of the gateway's memory and 20,000 lines of every
/// scrape, all of them zero.
final class FunctionMetrics: Sendable {
    private let function: String
    /// Also where each revision's series go (`FunctionRevisionMetrics`).
    let registry: PrometheusCollectorRegistry
    /// Made on first use; used from the function's home loop (the lock is never contended).
    private let made = NIOLockedValueBox<Series?>(nil)

    private struct Series: Sendable {
        let coldStarts: Counter
        let coldStartDuration: DurationHistogram
        let queueLength: Gauge
        let ejections: Counter
        let starting: Gauge
        let ready: Gauge
        let draining: Gauge
        /// Exec mode's processes, one per request.
        let running: Gauge
    }

    /// Cold starts span a millisecond (a native worker) to seconds (a heavy runtime).
    static let coldStartBuckets: [Duration] = [
        .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(25),
        .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1),
        .seconds(2), .seconds(5), .seconds(10),
    ]

    init(function: String, registry: PrometheusCollectorRegistry) {
        self.function = function
        self.registry = registry
    }

    var coldStarts: Counter { series.coldStarts }
    var coldStartDuration: DurationHistogram { series.coldStartDuration }
    var ejections: Counter { series.ejections }

    /// Whether the series exist (the function has had a worker or a waiting request).
    var registered: Bool { made.withLockedValue { $0 != nil } }

    func setWorkers(starting: Int, ready: Int, draining: Int, queueLength: Int) {
        // Nothing to show, and nothing shown yet: leave the function out of the scrape.
        if starting == 0 && ready == 0 && draining == 0 && queueLength == 0 && !registered { return }
        let series = self.series
        series.starting.set(Double(starting))
        series.ready.set(Double(ready))
        series.draining.set(Double(draining))
        series.queueLength.set(Double(queueLength))
    }

    /// An exec-mode function's processes running now, and the requests waiting for one.
    func setRunning(_ processes: Int, waiting: Int) {
        if processes == 0 && waiting == 0 && !registered { return }
        let series = self.series
        series.running.set(Double(processes))
        series.queueLength.set(Double(waiting))
    }

    private var series: Series {
        made.withLockedValue { made in
            if let made { return made }
            let series = Self.register(function, in: registry)
            made = series
            return series
        }
    }

    private static func register(_ function: String, in registry: PrometheusCollectorRegistry) -> Series {
        let label = [("function", function)]
        func workers(_ state: String) -> Gauge {
            registry.makeGauge(
                descriptor: .init(metricName: "portico_function", unitName: "workers",
                                  helpText: "Worker processes by state."),
                labels: [("function", function), ("state", state)])
        }
        return Series(
            coldStarts: registry.makeCounter(
                descriptor: .init(metricName: "portico_function_cold_starts", unitName: "total",
                                  helpText: "Requests that had to wait for a worker to start."),
                labels: label),
            coldStartDuration: registry.makeDurationHistogram(
                descriptor: .init(metricName: "portico_function_cold_start", unitName: "seconds",
                                  helpText: "From a cold request's arrival to its worker being ready."),
                labels: label, buckets: coldStartBuckets),
            queueLength: registry.makeGauge(
                descriptor: .init(metricName: "portico_function_queue", unitName: "length",
                                  helpText: "Requests waiting for a worker."),
                labels: label),
            // The series services use, labelled as the function's requests are (`function:NAME`).
            ejections: registry.makeCounter(
                descriptor: .init(metricName: "portico_outlier_ejections", unitName: "total",
                                  helpText: "Service endpoints and function workers ejected by outlier detection."),
                labels: [("service", "function:" + function)]),
            starting: workers("starting"),
            ready: workers("ready"),
            draining: workers("draining"),
            running: workers("running"))
    }
}
