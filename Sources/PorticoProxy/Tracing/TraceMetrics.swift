import Prometheus

/// What the span exporter did: spans sent, spans dropped and why, exports by result.
final class TraceMetrics: Sendable {
    let exportedSpans: Counter
    /// The exporter's queue was full (the collector is slow or down): the spans were never sent.
    let droppedQueueFull: Counter
    /// An export failed or timed out: its spans are dropped, not retried, so a collector that
    /// is down costs bounded memory.
    let droppedExportFailed: Counter
    let exportsSucceeded: Counter
    let exportsFailed: Counter

    init(registry: PrometheusCollectorRegistry) {
        exportedSpans = registry.makeCounter(
            descriptor: .init(metricName: "portico_trace_spans_exported", unitName: "total",
                              helpText: "Spans the collector accepted."))
        func dropped(_ reason: String) -> Counter {
            registry.makeCounter(
                descriptor: .init(metricName: "portico_trace_spans_dropped", unitName: "total",
                                  helpText: "Spans not exported, by reason: queue_full (the collector is slower than the spans come) or export_failed."),
                labels: [("reason", reason)])
        }
        droppedQueueFull = dropped("queue_full")
        droppedExportFailed = dropped("export_failed")
        func exports(_ result: String) -> Counter {
            registry.makeCounter(
                descriptor: .init(metricName: "portico_trace_exports", unitName: "total",
                                  helpText: "OTLP/HTTP export requests, by result."),
                labels: [("result", result)])
        }
        exportsSucceeded = exports("success")
        exportsFailed = exports("failure")
    }
}
