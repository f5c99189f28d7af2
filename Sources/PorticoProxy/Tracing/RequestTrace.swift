import NIOCore
import PorticoConfig
import PorticoCore
import PorticoHTTP1

/// What a request's spans will say, gathered while it runs: its ids, the server span's facts,
/// each upstream try, a fault delay and a cold start. Written out as spans when the request
/// ends (`TracingLayer`), if it is recorded.
///
/// A struct held by the request's handler: a request that is not recorded costs its ids, a few
/// timestamps and no allocation.
struct RequestTrace {
    let traceIDHigh: UInt64
    let traceIDLow: UInt64
    /// The server span, Portico's span for the request.
    let spanID: UInt64
    /// The client's span, from its `traceparent`; 0 when the request started the trace.
    let parentSpanID: UInt64
    /// The trace is sampled: upstreams are told so, and the spans are exported.
    let sampled: Bool
    /// Sampled, or kept in case the request fails (`alwaysSampleErrors`).
    let recording: Bool
    let started: NIODeadline
    var traceState: String?
    /// The normalized path and the host the request is for, once the edge has read them.
    var path: String?
    var authority: String?
    /// Tries that are over (only retries get here), and the one in progress.
    var finishedTries: [UpstreamTry] = []
    var currentTry: UpstreamTry?
    var tryCount = 0
    /// The span id the next try takes: the first try's is chosen, and written into the upstream
    /// head, while the head is still the request's alone (written later, it would be a copy).
    var nextTrySpanID: UInt64 = 0
    /// The span the upstream head's `traceparent` names now.
    var propagatedSpanID: UInt64 = 0
    /// An injected delay: when it began and how long it held the request.
    var faultDelay: (start: NIODeadline, nanoseconds: Int64)?
    /// When the endpoint a cold start made was handed to this request.
    var coldStartHandedOver: NIODeadline?

    init(traceIDHigh: UInt64, traceIDLow: UInt64, spanID: UInt64, parentSpanID: UInt64, sampled: Bool,
         recording: Bool, started: NIODeadline) {
        self.traceIDHigh = traceIDHigh
        self.traceIDLow = traceIDLow
        self.spanID = spanID
        self.parentSpanID = parentSpanID
        self.sampled = sampled
        self.recording = recording
        self.started = started
    }

    /// One try of the request upstream (a client span).
    struct UpstreamTry {
        let spanID: UInt64
        /// 0 for the first try; `http.request.resend_count` for the others.
        let number: Int
        let start: NIODeadline
        var end: NIODeadline?
        var endpoint: HostPort?
        var status: Int?
        /// Why the try failed without an answer (OpenTelemetry's `error.type`).
        var failure: String?
    }

    /// A try begins: its span id, for the `traceparent` the upstream gets.
    mutating func tryStarted(random: inout FastRandom, endpoint: HostPort?) -> UInt64 {
        endCurrentTry(at: .now())
        let span = nextTrySpanID != 0 ? nextTrySpanID : random.nonZero()
        nextTrySpanID = 0
        currentTry = UpstreamTry(spanID: span, number: tryCount, start: .now(), endpoint: endpoint)
        tryCount += 1
        return span
    }

    mutating func tryFailed(_ failure: String) {
        if currentTry != nil, currentTry!.failure == nil, currentTry!.status == nil { currentTry!.failure = failure }
    }

    mutating func endCurrentTry(at end: NIODeadline) {
        guard var last = currentTry else { return }
        currentTry = nil
        if last.end == nil { last.end = end }
        if recording { finishedTries.append(last) }
    }

    /// The `traceparent` an upstream gets for the span `spanID` of this trace.
    func traceParent(spanID: UInt64) -> TraceParent {
        TraceParent(traceIDHigh: traceIDHigh, traceIDLow: traceIDLow, spanID: spanID, sampled: sampled)
    }

    /// Puts `traceparent` for the current try in the upstream head, unless it is there already.
    mutating func propagateCurrentTry(into fields: inout HTTPFieldList) {
        guard let span = currentTry?.spanID, span != propagatedSpanID else { return }
        propagate(spanID: span, into: &fields)
        propagatedSpanID = span
    }

    /// Chooses the first try's span and puts it in the upstream head now.
    mutating func prepareFirstTry(random: inout FastRandom, fields: inout HTTPFieldList) {
        nextTrySpanID = random.nonZero()
        propagate(spanID: nextTrySpanID, into: &fields)
        propagatedSpanID = nextTrySpanID
    }

    /// Puts `traceparent` for span `spanID` in `fields`, replacing the client's.
    func propagate(spanID: UInt64, into fields: inout HTTPFieldList) {
        // Only when there is one: removing walks (and may move) every field.
        if fields.contains(Self.fieldName) { fields.removeAll(named: Self.fieldName) }
        traceParent(spanID: spanID).withEncodedBytes { value in
            Self.fieldName.withUTF8Buffer { name in
                fields.append(name: UnsafeRawBufferPointer(name), value: value)
            }
        }
    }

    private static let fieldName: StaticString = "traceparent"

    /// The trace id in hex, for the access log and the tap.
    var traceIDHex: String { TraceParent.hex(traceIDHigh) + TraceParent.hex(traceIDLow) }
}
