import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import PorticoConfig

/// Sends finished spans to the collector over OTLP/HTTP (protobuf), off the event loops.
///
/// Event loops hand over encoded batches (`submit`); nothing on a loop waits for the exporter.
/// The queue is bounded in spans (`maxQueueSize`): past it, a batch is dropped and counted.
/// One export is in flight at a time; a failed one is dropped and counted rather than retried,
/// so a collector that is down costs the queue's memory and no more, and requests never slow.
///
/// `@unchecked Sendable`: every stored property but the immutable ones is touched only on
/// `eventLoop`, the exporter's own thread; `submit` and `configure` hop there first.
final class TraceExporter: @unchecked Sendable {
    private let group: MultiThreadedEventLoopGroup
    let eventLoop: EventLoop
    private let metrics: TraceMetrics
    /// Set once the thread is going: a batch handed over after that is dropped (a loop's late
    /// handover at shutdown must not schedule work on a loop that has stopped). Taken once per
    /// batch, not per request.
    private let stopped = NIOLockedValueBox(false)
    private var config: TracingConfig
    private var queue: [(spans: ByteBuffer, count: Int)] = []
    private var queuedSpans = 0
    private var exporting = false
    private var retryTask: Scheduled<Void>?
    /// The encoded `Resource` and `InstrumentationScope` of every export, made again when the
    /// config changes.
    private var resource = ByteBuffer()
    private var scope = ByteBuffer()
    /// An export carries at most this many bytes of spans; more waits for the next.
    static let maxExportBytes = 4 << 20

    init(config: TracingConfig, metrics: TraceMetrics) {
        group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        eventLoop = group.next()
        self.metrics = metrics
        self.config = config
        encodeResource()
    }

    /// A reload's tracing settings: a new collector, service name or queue bound.
    func configure(_ newConfig: TracingConfig) {
        eventLoop.execute {
            guard newConfig != self.config else { return }
            self.config = newConfig
            self.encodeResource()
        }
    }

    /// Takes a loop's batch: `spans` holds `count` entries of `ScopeSpans.spans`.
    func submit(_ spans: ByteBuffer, count: Int) {
        let accepted = stopped.withLockedValue { stopped in
            // Held while the task is queued, so `shutdown` cannot slip in between.
            if stopped { return false }
            eventLoop.execute { self.enqueue(spans, count: count) }
            return true
        }
        if !accepted { metrics.droppedQueueFull.increment(by: Int64(count)) }
    }

    private func enqueue(_ spans: ByteBuffer, count: Int) {
        guard queuedSpans + count <= config.maxQueueSize else {
            metrics.droppedQueueFull.increment(by: Int64(count))
            return
        }
        queue.append((spans, count))
        queuedSpans += count
        exportIfIdle()
    }

    /// Sends what is queued, then waits for it to go (for a clean shutdown), up to `timeout`.
    func flush(timeout: TimeAmount) -> EventLoopFuture<Void> {
        eventLoop.flatSubmit {
            let deadline = NIODeadline.now() + timeout
            return self.waitUntilDrained(deadline: deadline)
        }
    }

    private func waitUntilDrained(deadline: NIODeadline) -> EventLoopFuture<Void> {
        if (queue.isEmpty && !exporting) || NIODeadline.now() >= deadline { return eventLoop.makeSucceededVoidFuture() }
        exportIfIdle()
        return eventLoop.scheduleTask(in: .milliseconds(10)) {}.futureResult.flatMap { self.waitUntilDrained(deadline: deadline) }
    }

    func shutdown() {
        stopped.withLockedValue { $0 = true }
        group.shutdownGracefully { _ in }
    }

    private func exportIfIdle() {
        guard !exporting, retryTask == nil, !queue.isEmpty else { return }
        var taken = 0
        var bytes = 0
        var spanCount = 0
        while taken < queue.count, taken == 0 || bytes + queue[taken].spans.readableBytes <= Self.maxExportBytes {
            bytes += queue[taken].spans.readableBytes
            spanCount += queue[taken].count
            taken += 1
        }
        let batches = queue.prefix(taken)
        queue.removeFirst(taken)
        queuedSpans -= spanCount
        exporting = true
        let body = request(with: batches, spanBytes: bytes)
        let endpoint = config.endpoint
        let exported = spanCount
        OneShotHTTPClient.post(
            host: endpoint.address.host, port: endpoint.address.port, path: endpoint.path,
            hostHeader: endpoint.address.description, contentType: "application/x-protobuf", body: body,
            timeout: config.exportTimeout.timeAmount, maxBytes: 64 * 1024, on: eventLoop
        ).whenComplete { result in
            self.exporting = false
            if case .success(let response) = result, (200..<300).contains(response.status) {
                self.metrics.exportsSucceeded.increment()
                self.metrics.exportedSpans.increment(by: Int64(exported))
                self.exportIfIdle()
            } else {
                self.metrics.exportsFailed.increment()
                self.metrics.droppedExportFailed.increment(by: Int64(exported))
                // A collector that refuses is asked again a little later, not in a tight loop;
                // meanwhile the queue fills and drops what does not fit.
                self.retryTask = self.eventLoop.scheduleTask(in: .milliseconds(500)) {
                    self.retryTask = nil
                    self.exportIfIdle()
                }
            }
        }
    }

    /// `ExportTraceServiceRequest { resource_spans = 1: ResourceSpans { resource = 1,
    /// scope_spans = 2: ScopeSpans { scope = 1, spans = 2... } } }`.
    private func request(with batches: ArraySlice<(spans: ByteBuffer, count: Int)>, spanBytes: Int) -> ByteBuffer {
        let scopeSpansLength = ByteBuffer.lengthDelimitedSize(field: 1, length: scope.readableBytes) + spanBytes
        let resourceSpansLength = ByteBuffer.lengthDelimitedSize(field: 1, length: resource.readableBytes)
            + ByteBuffer.lengthDelimitedSize(field: 2, length: scopeSpansLength)
        var body = ByteBufferAllocator().buffer(capacity: resourceSpansLength + 16)
        body.writeLengthDelimitedHeader(1, length: resourceSpansLength)
        body.writeLengthDelimitedHeader(1, length: resource.readableBytes)
        body.writeImmutableBuffer(resource)
        body.writeLengthDelimitedHeader(2, length: scopeSpansLength)
        body.writeLengthDelimitedHeader(1, length: scope.readableBytes)
        body.writeImmutableBuffer(scope)
        for batch in batches { body.writeImmutableBuffer(batch.spans) }
        return body
    }

    private func encodeResource() {
        resource.clear()
        for (key, value) in [("service.name", config.serviceName), ("telemetry.sdk.name", "portico"),
                             ("telemetry.sdk.language", "swift")] {
            OTLPSpanBuilder.writeKeyValue(&resource, field: 1, key: key, value: .string(value))
        }
        scope.clear()
        scope.writeStringField(1, "portico")
    }
}
