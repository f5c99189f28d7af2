extension FastRandom {
    /// A uniform draw from [0, 100).
    mutating func percentDraw() -> Double {
        unitDraw() * 100
    }

    /// A uniform draw from [0, 1).
    mutating func unitDraw() -> Double {
        Double(next() >> 11) * 0x1p-53
    }
}
