import NIOCore
import PorticoConfig
import PorticoCore
import PorticoHTTP1
import Prometheus

/// The running config's tracing: its sampler and the exporter its spans go to. One exporter
/// lives as long as tracing stays configured: a reload re-configures it, so spans waiting for
/// export are not lost to a reload.
final class TracingRuntime: Sendable {
    let config: TracingConfig
    let sampler: TraceSampler
    let exporter: TraceExporter
    let exportInterval: TimeAmount

    init(config: TracingConfig, previous: TracingRuntime?, registry: PrometheusCollectorRegistry?) {
        self.config = config
        sampler = TraceSampler(ratio: config.ratio, parentBased: config.parentBased)
        exportInterval = config.exportInterval.timeAmount
        if let previous {
            exporter = previous.exporter
            exporter.configure(config)
        } else {
            exporter = TraceExporter(config: config, metrics: TraceMetrics(registry: registry ?? PrometheusCollectorRegistry()))
        }
    }

    /// A request's trace, from its `traceparent` (when valid) or a new one.
    func begin(fields: HTTPFieldList, random: inout FastRandom, started: NIODeadline) -> RequestTrace {
        var parent: TraceParent?
        if let index = fields.firstIndex(of: "traceparent") {
            parent = fields[index].withUnsafeValueBytes { TraceParent.parse($0) }
        }
        let high = parent?.traceIDHigh ?? random.next()
        let low = parent?.traceIDLow ?? random.next()
        let sampled = sampler.sampled(parent: parent, traceIDLow: low)
        var trace = RequestTrace(
            traceIDHigh: high, traceIDLow: low, spanID: random.nonZero(), parentSpanID: parent?.spanID ?? 0,
            sampled: sampled, recording: sampled || config.alwaysSampleErrors, started: started)
        if trace.recording, parent != nil {
            // Vendors' entries pass to the upstream with the request's other fields; the span
            // records them as it found them.
            trace.traceState = fields.firstValue(of: "tracestate")
        }
        return trace
    }
}

extension FastRandom {
    /// A span id: 64 random bits, never 0 (which `traceparent` forbids).
    mutating func nonZero() -> UInt64 {
        let value = next()
        return value == 0 ? 1 : value
    }
}
