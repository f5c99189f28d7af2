extension ConfigDuration {
    /// Parses the config's duration notation: `250ms`, `2s`, `1m`, `1h`, compounds such as `1m30s`.
    ///
    /// Units go from largest to smallest and each appears at most once, so `30s1m` and `1s1s`
    /// are rejected rather than guessed at. A bare number is rejected too: `timeout: 10` could
    /// mean seconds or milliseconds, and a gateway that guesses wrong fails in production.
    /// Fractions (`1.5s`) are not accepted; write `1500ms`.
    public static func parse(_ s: String) -> ConfigDuration? {
        // Ordered largest first; a component's unit must sit strictly after the previous one's.
        let units: [(suffix: String, nanoseconds: Int64)] = [
            ("h", 3_600_000_000_000),
            ("m", 60_000_000_000),
            ("s", 1_000_000_000),
            ("ms", 1_000_000),
        ]
        var rest = Substring(s)
        guard !rest.isEmpty else { return nil }
        var total: Int64 = 0
        var nextAllowedUnit = 0
        while !rest.isEmpty {
            let digits = rest.prefix { $0.isASCII && $0.isNumber }
            guard !digits.isEmpty, digits.count <= 18, let amount = Int64(digits) else { return nil }
            rest = rest.dropFirst(digits.count)
            let letters = rest.prefix { $0.isASCII && $0.isLetter }
            rest = rest.dropFirst(letters.count)
            guard let unitIndex = units.firstIndex(where: { $0.suffix == letters }),
                  unitIndex >= nextAllowedUnit else { return nil }
            nextAllowedUnit = unitIndex + 1
            let (scaled, overflow1) = amount.multipliedReportingOverflow(by: units[unitIndex].nanoseconds)
            let (sum, overflow2) = total.addingReportingOverflow(scaled)
            guard !overflow1, !overflow2 else { return nil }
            total = sum
        }
        return ConfigDuration(nanoseconds: total)
    }
}
