import NIOCore

/// The few protobuf wire rules an OTLP export needs (https://protobuf.dev/programming-guides/encoding/):
/// varints, fixed 64-bit numbers and length-delimited fields. Hand-written rather than
/// generated with swift-protobuf: spans are written straight into a loop's batch buffer, with
/// no message objects in between (see `OTLPSpanBuilder`).
extension ByteBuffer {
    enum WireType: UInt8 {
        case varint = 0
        case fixed64 = 1
        case lengthDelimited = 2
        case fixed32 = 5
    }

    mutating func writeProtobufTag(_ field: Int, _ type: WireType) {
        writeVarint(UInt64(field << 3) | UInt64(type.rawValue))
    }

    /// One write of all its bytes: a `writeInteger` per byte was most of the cost of encoding a
    /// span (each one a capacity and exclusivity check in NIO).
    mutating func writeVarint(_ value: UInt64) {
        writeWithUnsafeMutableBytes(minimumWritableBytes: 10) { raw in
            var value = value
            var count = 0
            while value >= 0x80 {
                raw[count] = UInt8(truncatingIfNeeded: value) | 0x80
                value >>= 7
                count += 1
            }
            raw[count] = UInt8(value)
            return count + 1
        }
    }

    static func varintSize(_ value: UInt64) -> Int {
        var size = 1
        var value = value >> 7
        while value != 0 {
            size += 1
            value >>= 7
        }
        return size
    }

    /// The size of a length-delimited field whose content is `length` bytes.
    static func lengthDelimitedSize(field: Int, length: Int) -> Int {
        varintSize(UInt64(field << 3)) + varintSize(UInt64(length)) + length
    }

    mutating func writeFixed64Field(_ field: Int, _ value: UInt64) {
        writeProtobufTag(field, .fixed64)
        writeInteger(value, endianness: .little)
    }

    mutating func writeVarintField(_ field: Int, _ value: UInt64) {
        writeProtobufTag(field, .varint)
        writeVarint(value)
    }

    mutating func writeStringField(_ field: Int, _ value: String) {
        writeProtobufTag(field, .lengthDelimited)
        writeVarint(UInt64(value.utf8.count))
        writeString(value)
    }

    /// A length-delimited header: the tag and the length of the content that follows.
    mutating func writeLengthDelimitedHeader(_ field: Int, length: Int) {
        writeProtobufTag(field, .lengthDelimited)
        writeVarint(UInt64(length))
    }

    /// 16 lower-case hex digits (a span id, half a trace id), as `traceparent` writes them.
    mutating func writeHex64(_ value: UInt64) {
        writeWithUnsafeMutableBytes(minimumWritableBytes: 16) { raw in
            for index in 0..<16 {
                let digit = UInt8(truncatingIfNeeded: value >> UInt64(60 - index * 4)) & 0xF
                raw[index] = digit < 10 ? UInt8(ascii: "0") + digit : UInt8(ascii: "a") + digit - 10
            }
            return 16
        }
    }

    /// A trace or span id as protobuf `bytes`: big-endian, as `traceparent` writes it in hex.
    mutating func writeIDField(_ field: Int, high: UInt64?, low: UInt64) {
        writeLengthDelimitedHeader(field, length: high == nil ? 8 : 16)
        if let high { writeInteger(high, endianness: .big) }
        writeInteger(low, endianness: .big)
    }
}
