/// The grammar of a `Host` value (RFC 9112 3.2, RFC 3986 3.2.2): `uri-host [ ":" port ]`.
enum HostHeader {
    /// True for `example.com`, `example.com:8080`, `127.0.0.1`, `[::1]:8443`, and the empty
    /// value; false for anything with a space, `/`, `@`, `,` or a control byte in it.
    ///
    /// Stricter than RFC 3986 in one place: a `,` (a sub-delim there) is refused, because a
    /// backend that reads the field as a list would see two hosts, as nginx refuses it.
    ///
    /// Concrete over raw bytes rather than generic: unspecialized generic code (a debug build)
    /// allocates on every subscript, and this runs on every request.
    static func isValid(_ value: UnsafeRawBufferPointer) -> Bool {
        var index = value.startIndex
        if index < value.endIndex, value[index] == UInt8(ascii: "[") {
            // IP-literal: hex digits, ':' and '.' (an IPv4 tail) up to the closing bracket.
            index = value.index(after: index)
            var sawDigit = false
            while index < value.endIndex, value[index] != UInt8(ascii: "]") {
                let byte = value[index]
                guard isHexDigit(byte) || byte == UInt8(ascii: ":") || byte == UInt8(ascii: ".") else { return false }
                sawDigit = true
                index = value.index(after: index)
            }
            guard sawDigit, index < value.endIndex else { return false }
            index = value.index(after: index)
        } else {
            while index < value.endIndex, value[index] != UInt8(ascii: ":") {
                guard isRegNameByte(value[index]) else { return false }
                index = value.index(after: index)
            }
        }
        guard index < value.endIndex else { return true }
        // The port: a colon and digits (RFC 3986 allows none).
        guard value[index] == UInt8(ascii: ":") else { return false }
        index = value.index(after: index)
        var port = 0
        while index < value.endIndex {
            let byte = value[index]
            guard byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") else { return false }
            port = port * 10 + Int(byte - UInt8(ascii: "0"))
            guard port <= 65535 else { return false }
            index = value.index(after: index)
        }
        return true
    }

    static func isValid(_ value: String) -> Bool {
        var value = value
        return value.withUTF8 { isValid(UnsafeRawBufferPointer($0)) }
    }

    private static func isHexDigit(_ byte: UInt8) -> Bool {
        (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")) || (byte | 0x20 >= UInt8(ascii: "a") && byte | 0x20 <= UInt8(ascii: "f"))
    }

    /// `unreserved`, `%` of `pct-encoded`, and the `sub-delims` but `,`.
    private static func isRegNameByte(_ byte: UInt8) -> Bool {
        let lower = byte | 0x20
        if lower >= UInt8(ascii: "a") && lower <= UInt8(ascii: "z") { return true }
        if byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") { return true }
        switch byte {
        case UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"), UInt8(ascii: "%"),
             UInt8(ascii: "!"), UInt8(ascii: "$"), UInt8(ascii: "&"), UInt8(ascii: "'"), UInt8(ascii: "("), UInt8(ascii: ")"),
             UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: ";"), UInt8(ascii: "="):
            return true
        default:
            return false
        }
    }
}
