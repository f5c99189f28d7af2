/// A hash that is the same in every process and on every run (unlike `Hasher`, which is seeded
/// per process), so a split sends a given request key to the same backend on every worker and
/// after every restart.
public enum StableHash {
    /// FNV-1a 64 of the UTF-8 bytes, then finalized.
    public static func hash(_ s: String) -> UInt64 {
        var s = s
        return s.withUTF8 { hash($0) }
    }

    /// FNV-1a 64 of the bytes, then a splitmix64 finalizer.
    ///
    /// FNV alone leaves keys that differ in their last byte (`req-1`, `req-2`) close together
    /// in the high bits that `WeightedPicker` uses; the finalizer spreads them out.
    public static func hash(_ bytes: some Sequence<UInt8>) -> UInt64 {
        var state: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in bytes {
            state ^= UInt64(byte)
            state &*= 0x0000_0100_0000_01b3
        }
        return finalize(state)
    }

    /// splitmix64's output function.
    static func finalize(_ value: UInt64) -> UInt64 {
        var z = value
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }
}
