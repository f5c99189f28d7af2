/// Which bytes RFC 9110/9112 allow where, as one 256-entry table of bit flags.
///
/// A table keeps the per-byte checks of the scanners to one load and one mask, with no
/// branching on ranges; the scanners run these checks on every byte of every head.
enum HTTP1ByteClass {
    /// tchar (RFC 9110 §5.6.2): the bytes of a token such as a method or a field name.
    static let token: UInt8 = 1 << 0
    /// Bytes allowed in a request-target: visible ASCII except `#` (a fragment is never sent).
    static let target: UInt8 = 1 << 1
    /// HEXDIG.
    static let hex: UInt8 = 1 << 2
    /// DIGIT.
    static let digit: UInt8 = 1 << 3
    /// The reg-name and IPv4 bytes of a Host value: unreserved, sub-delims and `%` (RFC 3986).
    static let regName: UInt8 = 1 << 4
    /// qdtext of a quoted-string (RFC 9110 §5.6.4): HTAB, SP, visible ASCII except `"` and `\`, obs-text.
    static let quotedText: UInt8 = 1 << 5
    /// Bytes a head line may hold besides its CRLF: HTAB, SP, visible ASCII and obs-text.
    /// Everything else (NUL, the other control bytes, DEL) is rejected wherever it appears.
    static let lineByte: UInt8 = 1 << 6

    static let table: [UInt8] = {
        var table = [UInt8](repeating: 0, count: 256)
        func mark(_ bytes: some Sequence<UInt8>, _ flag: UInt8) {
            for byte in bytes { table[Int(byte)] |= flag }
        }
        let letters = Array(UInt8(ascii: "a")...UInt8(ascii: "z")) + Array(UInt8(ascii: "A")...UInt8(ascii: "Z"))
        let digits = Array(UInt8(ascii: "0")...UInt8(ascii: "9"))
        let visible = Array(UInt8(0x21)...UInt8(0x7E))
        let obsText = Array(UInt8(0x80)...UInt8(0xFF))

        mark(letters + digits + Array("!#$%&'*+-.^_`|~".utf8), token)
        mark(visible.filter { $0 != UInt8(ascii: "#") }, target)
        mark(digits + Array("abcdefABCDEF".utf8), hex)
        mark(digits, digit)
        mark(letters + digits + Array("-._~!$&'()*+,;=%".utf8), regName)
        mark(
            [0x09, 0x20] + visible.filter { $0 != UInt8(ascii: "\"") && $0 != UInt8(ascii: "\\") } + obsText,
            quotedText
        )
        mark([0x09, 0x20] + visible + obsText, lineByte)
        return table
    }()

    @inline(__always)
    static func `is`(_ byte: UInt8, _ flag: UInt8) -> Bool {
        table.withUnsafeBufferPointer { $0[Int(byte)] } & flag != 0
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
