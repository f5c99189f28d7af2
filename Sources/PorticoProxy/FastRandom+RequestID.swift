import NIOCore
import PorticoCore

extension FastRandom {
    /// A random UUID-shaped id (version 4 layout) for `x-request-id`.
    mutating func makeRequestID() -> String {
        let high = next()
        let low = next()
        return String(unsafeUninitializedCapacity: 36) { buffer in
            var index = 0
            func put(_ value: UInt64, nibbles: Int) {
                for shift in stride(from: (nibbles - 1) * 4, through: 0, by: -4) {
                    buffer[index] = ByteBuffer.hexDigit(UInt8((value >> UInt64(shift)) & 0xF))
                    index += 1
                }
            }
            func dash() {
                buffer[index] = UInt8(ascii: "-")
                index += 1
            }
            put(high >> 32, nibbles: 8); dash()
            put((high >> 16) & 0xFFFF, nibbles: 4); dash()
            put(0x4000 | (high & 0x0FFF), nibbles: 4); dash()
            put(0x8000 | ((low >> 48) & 0x3FFF), nibbles: 4); dash()
            put(low & 0xFFFF_FFFF_FFFF, nibbles: 12)
            return index
        }
    }
}
