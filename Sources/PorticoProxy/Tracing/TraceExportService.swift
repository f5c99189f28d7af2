import NIOCore
import ServiceLifecycle

/// The span exporter's lifetime. At shutdown, after the listeners have drained, it collects
/// every event loop's waiting spans and gives the exporter a moment to send them, so the last
/// requests' traces are not lost; then the exporter's thread ends.
public struct TraceExportService: Service {
    let gateway: Gateway

    public init(gateway: Gateway) { self.gateway = gateway }

    public func run() async throws {
        try? await gracefulShutdown()
        await gateway.flushTraces()
    }
}

extension Gateway {
    /// Hands every loop's spans to the exporter and waits (2 s at most) for them to be sent.
    func flushTraces() async {
        guard let tracing = snapshot.tracing else { return }
        await proxyLoops.onEachAndWait { loop in loop.traces.flush(to: tracing.exporter) }
        try? await tracing.exporter.flush(timeout: .seconds(2)).get()
        tracing.exporter.shutdown()
    }
}
