/// The 64-bit FNV-1a hash: a few lines, no dependency, and the same value on every platform
/// and run (unlike `Hasher`, which is seeded per process). Not for anything adversarial.
struct FNV1a64 {
    private(set) var value: UInt64 = 0xcbf2_9ce4_8422_2325
    private static let prime: UInt64 = 0x0000_0100_0000_01b3

    mutating func add<Bytes: Sequence>(_ bytes: Bytes) where Bytes.Element == UInt8 {
        for byte in bytes {
            value = (value ^ UInt64(byte)) &* Self.prime
        }
    }

    mutating func add(byte: UInt8) {
        value = (value ^ UInt64(byte)) &* Self.prime
    }

    /// Little-endian, so the hash does not depend on the machine's byte order.
    mutating func add(littleEndian number: UInt64) {
        for shift in stride(from: 0, to: 64, by: 8) {
            add(byte: UInt8(truncatingIfNeeded: number >> UInt64(shift)))
        }
    }
}
