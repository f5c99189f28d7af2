/// Which bytes RFC 9110/9112 allow where.
///
/// Each class is two 64-bit masks (one bit per ASCII byte) and one answer for bytes 0x80 and
/// up. The masks are literals, so a check inlines to a shift and a test, with no table to load
/// or lazily initialize: the scanners run these checks on every byte of every head.
enum HTTP1ByteClass {
    /// tchar (RFC 9110 §5.6.2): the bytes of a token such as a method or a field name.
    case token
    /// Bytes allowed in a request-target: visible ASCII except `#` (a fragment is never sent).
    case target
    /// HEXDIG.
    case hex
    /// DIGIT.
    case digit
    /// The reg-name and IPv4 bytes of a Host value: unreserved, sub-delims and `%` (RFC 3986).
    case regName
    /// qdtext of a quoted-string (RFC 9110 §5.6.4): HTAB, SP, visible ASCII except `"` and `\`, obs-text.
    case quotedText
    /// Bytes a head line may hold besides its CRLF: HTAB, SP, visible ASCII and obs-text.
    /// Everything else (NUL, the other control bytes, DEL) is rejected wherever it appears.
    case lineByte

    /// Bits for bytes 0–63, bits for bytes 64–127, and whether bytes 128–255 belong.
    @inline(__always)
    private var masks: (low: UInt64, high: UInt64, nonASCII: Bool) {
        switch self {
        case .token: return (0x03FF_6CFA_0000_0000, 0x57FF_FFFF_C7FF_FFFE, false)
        case .target: return (0xFFFF_FFF6_0000_0000, 0x7FFF_FFFF_FFFF_FFFF, false)
        case .hex: return (0x03FF_0000_0000_0000, 0x0000_007E_0000_007E, false)
        case .digit: return (0x03FF_0000_0000_0000, 0x0000_0000_0000_0000, false)
        case .regName: return (0x2BFF_7FF2_0000_0000, 0x47FF_FFFE_87FF_FFFE, false)
        case .quotedText: return (0xFFFF_FFFB_0000_0200, 0x7FFF_FFFF_EFFF_FFFF, true)
        case .lineByte: return (0xFFFF_FFFF_0000_0200, 0x7FFF_FFFF_FFFF_FFFF, true)
        }
    }

    @inline(__always)
    func contains(_ byte: UInt8) -> Bool {
        let masks = self.masks
        if byte < 64 { return (masks.low >> UInt64(byte)) & 1 == 1 }
        if byte < 128 { return (masks.high >> UInt64(byte &- 64)) & 1 == 1 }
        return masks.nonASCII
    }

    /// The value of a hex digit; the caller has checked `hex`.
    @inline(__always)
    static func hexValue(_ byte: UInt8) -> Int64 {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return Int64(byte &- UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return Int64(byte &- UInt8(ascii: "a") &+ 10)
        default: return Int64(byte &- UInt8(ascii: "A") &+ 10)
        }
    }

    /// ASCII lowercase of one byte; other bytes are returned unchanged.
    @inline(__always)
    static func lowercased(_ byte: UInt8) -> UInt8 {
        (byte &- UInt8(ascii: "A")) < 26 ? byte | 0x20 : byte
    }

    @inline(__always)
    static func isWhitespace(_ byte: UInt8) -> Bool {
        byte == 0x20 || byte == 0x09
    }
}
