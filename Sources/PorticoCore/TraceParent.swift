/// A W3C Trace Context `traceparent` (https://www.w3.org/TR/trace-context/): the trace a request
/// belongs to, the span that sent it, and whether that trace is sampled.
///
/// Parsed and written from bytes: with tracing on, every request reads one and every upstream
/// request gets one, and neither needs a `String`.
public struct TraceParent: Sendable, Equatable {
    public var traceIDHigh: UInt64
    public var traceIDLow: UInt64
    /// The span this one's parent is (the sender's span), or the span a request is sent from.
    public var spanID: UInt64
    public var sampled: Bool

    public init(traceIDHigh: UInt64, traceIDLow: UInt64, spanID: UInt64, sampled: Bool) {
        self.traceIDHigh = traceIDHigh
        self.traceIDLow = traceIDLow
        self.spanID = spanID
        self.sampled = sampled
    }

    /// The length of a version-00 `traceparent`: `00-` 32 hex `-` 16 hex `-` 2 hex.
    public static let encodedLength = 55

    /// Reads a `traceparent` value. Nil for anything the specification says to ignore: a wrong
    /// length or separator, upper-case or non-hex digits, version `ff`, an all-zero trace or
    /// span id, or a version-00 value with anything after the flags. A later version may be
    /// longer (what follows a `-` after the flags is for it); its first four fields are read.
    public static func parse(_ bytes: UnsafeRawBufferPointer) -> TraceParent? {
        let dash = UInt8(ascii: "-")
        guard bytes.count >= encodedLength, bytes[2] == dash, bytes[35] == dash, bytes[52] == dash,
              let version = hexNumber(bytes, from: 0, digits: 2), version != 0xFF,
              let high = hexNumber(bytes, from: 3, digits: 16), let low = hexNumber(bytes, from: 19, digits: 16),
              high | low != 0,
              let span = hexNumber(bytes, from: 36, digits: 16), span != 0,
              let flags = hexNumber(bytes, from: 53, digits: 2) else { return nil }
        if bytes.count > encodedLength {
            // Version 00 ends at its flags; a later version may go on, after a dash.
            guard version != 0, bytes[encodedLength] == dash else { return nil }
        }
        return TraceParent(traceIDHigh: high, traceIDLow: low, spanID: span, sampled: flags & 1 == 1)
    }

    public static func parse(_ bytes: [UInt8]) -> TraceParent? {
        bytes.withUnsafeBytes { parse($0) }
    }

    /// `digits` lower-case hex digits from `start` (the specification forbids upper case).
    private static func hexNumber(_ bytes: UnsafeRawBufferPointer, from start: Int, digits: Int) -> UInt64? {
        var value: UInt64 = 0
        for index in start..<(start + digits) {
            let byte = bytes[index]
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            default: return nil
            }
            value = value << 4 | UInt64(digit)
        }
        return value
    }

    /// Version 00 of this `traceparent`, as its 55 ASCII bytes.
    public func withEncodedBytes<Result>(_ body: (UnsafeRawBufferPointer) throws -> Result) rethrows -> Result {
        // Seven words hold the 55 bytes: on the stack, whatever the build.
        var words: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0, 0)
        return try withUnsafeMutableBytes(of: &words) { raw in
            raw[0] = UInt8(ascii: "0")
            raw[1] = UInt8(ascii: "0")
            raw[2] = UInt8(ascii: "-")
            Self.writeHex(traceIDHigh, into: raw, at: 3)
            Self.writeHex(traceIDLow, into: raw, at: 19)
            raw[35] = UInt8(ascii: "-")
            Self.writeHex(spanID, into: raw, at: 36)
            raw[52] = UInt8(ascii: "-")
            raw[53] = UInt8(ascii: "0")
            raw[54] = sampled ? UInt8(ascii: "1") : UInt8(ascii: "0")
            return try body(UnsafeRawBufferPointer(rebasing: raw[0..<Self.encodedLength]))
        }
    }

    private static func writeHex(_ value: UInt64, into raw: UnsafeMutableRawBufferPointer, at start: Int) {
        for index in 0..<16 {
            raw[start + index] = hexDigit(UInt8(truncatingIfNeeded: value >> UInt64(60 - index * 4)) & 0xF)
        }
    }

    private static func hexDigit(_ nibble: UInt8) -> UInt8 {
        nibble < 10 ? UInt8(ascii: "0") + nibble : UInt8(ascii: "a") + nibble - 10
    }

    /// The 32 lower-case hex digits of the trace id, for the access log and the tap.
    public var traceIDHex: String { Self.hex(traceIDHigh) + Self.hex(traceIDLow) }

    public static func hex(_ value: UInt64) -> String {
        String(unsafeUninitializedCapacity: 16) { buffer in
            for index in 0..<16 {
                buffer[index] = hexDigit(UInt8(truncatingIfNeeded: value >> UInt64(60 - index * 4)) & 0xF)
            }
            return 16
        }
    }
}
