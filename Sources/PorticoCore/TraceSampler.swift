/// Decides whether a request's trace is recorded: OpenTelemetry's `parentbased_traceidratio`
/// (or plain `traceidratio` when `parentBased` is off).
///
/// The ratio is applied to the trace id, not drawn afresh, as OpenTelemetry's
/// `TraceIdRatioBased` does: every service that samples by the same ratio keeps the same traces.
public struct TraceSampler: Sendable, Equatable {
    /// A trace is sampled when its id's low 64 bits are below this (`ratio` × 2⁶⁴); a ratio of 1
    /// samples everything.
    public let threshold: UInt64
    public let sampleAll: Bool
    public let parentBased: Bool

    public init(ratio: Double, parentBased: Bool) {
        let clamped = min(max(ratio, 0), 1)
        sampleAll = clamped >= 1
        // 2⁶⁴ × ratio, computed below 2⁶⁴ so the conversion cannot trap.
        threshold = sampleAll ? .max : UInt64(clamped * 18_446_744_073_709_549_568.0)
        self.parentBased = parentBased
    }

    /// `parent`: the request's valid `traceparent`, if it had one; `traceIDLow`: the low half of
    /// the trace id the request's spans carry (the parent's, or a new one).
    public func sampled(parent: TraceParent?, traceIDLow: UInt64) -> Bool {
        if parentBased, let parent { return parent.sampled }
        return sampleAll || traceIDLow < threshold
    }
}
