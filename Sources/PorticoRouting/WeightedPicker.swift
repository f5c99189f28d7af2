/// Picks an index among weighted choices from a uniform 64-bit number: a random draw per
/// request lands on each choice in proportion to its weight, and the hash of a sticky value
/// lands on the same choice every time.
public struct WeightedPicker: Sendable, Equatable {
    /// Running totals: choice `i` owns the points `[cumulative[i-1], cumulative[i])`.
    private let cumulative: [UInt64]
    /// The sum of the (non-negative) weights.
    public let total: UInt64

    /// Negative weights count as 0; a weight of 0 is never picked.
    public init(weights: [Int]) {
        var running: UInt64 = 0
        var cumulative: [UInt64] = []
        cumulative.reserveCapacity(weights.count)
        for weight in weights {
            running += UInt64(max(weight, 0))
            cumulative.append(running)
        }
        self.cumulative = cumulative
        self.total = running
    }

    /// The index whose share of the total `hash` (a random draw or a hash) falls into; 0 when
    /// every weight is 0.
    public func pick(hash: UInt64) -> Int {
        guard total > 0 else { return 0 }
        // Scales the hash onto [0, total) with a multiply instead of `%`: no modulo bias, and it
        // uses the hash's high bits, which the finalizer mixes best.
        let point = hash.multipliedFullWidth(by: total).high
        // Splits have a handful of backends: a linear scan beats a binary search.
        for (index, bound) in cumulative.enumerated() where point < bound {
            return index
        }
        return cumulative.count - 1
    }
}
