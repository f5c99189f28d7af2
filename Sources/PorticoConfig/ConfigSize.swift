/// Byte sizes as the config writes them: `1048576`, `512B`, `64KB`, `60KiB`, `10MiB`, `1GB`.
///
/// `KB`/`MB`/`GB` are decimal (1000-based) and `KiB`/`MiB`/`GiB` binary (1024-based), as the
/// SI and IEC prefixes say; limits are usually meant in binary units, so the examples use those.
public enum ConfigSize {
    /// Multipliers by unit, checked case-sensitively: `kb` or `Mb` are more likely a typo (or bits)
    /// than a size, and a limit that is off by 8x is worse than an error at load time.
    static let units: [(suffix: String, multiplier: Int)] = [
        ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10),
        ("GB", 1_000_000_000), ("MB", 1_000_000), ("KB", 1_000),
        ("B", 1),
    ]

    /// The number of bytes `s` stands for, or nil if it is not a size.
    ///
    /// One space between number and unit is tolerated (`10 MiB`); negative numbers and
    /// fractions are not sizes.
    public static func parse(_ s: String) -> Int? {
        let digits = s.prefix { $0.isASCII && $0.isNumber }
        guard !digits.isEmpty, digits.count <= 18, let amount = Int(digits) else { return nil }
        var unit = s.dropFirst(digits.count)
        if unit.first == " " { unit = unit.dropFirst() }
        if unit.isEmpty && digits.count == s.count { return amount }
        guard let multiplier = units.first(where: { $0.suffix == unit })?.multiplier else { return nil }
        let (bytes, overflow) = amount.multipliedReportingOverflow(by: multiplier)
        return overflow ? nil : bytes
    }

    /// The shortest exact spelling of `bytes` in the largest binary unit that divides it
    /// (`61440` → `60KiB`), for messages; `parse(format(n)) == n` for every `n >= 0`.
    public static func format(_ bytes: Int) -> String {
        for (suffix, multiplier) in units where suffix.hasSuffix("iB") {
            if bytes != 0 && bytes % multiplier == 0 { return "\(bytes / multiplier)\(suffix)" }
        }
        return "\(bytes)B"
    }
}
