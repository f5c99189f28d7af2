/// Reads the server name (SNI) from the first bytes a TLS client sends, without decrypting
/// anything and without I/O: the caller buffers what arrived and asks again after each read.
///
/// A ClientHello may be split over several TLS records and each record over several reads, so
/// the parse starts over from the first byte each time; the bytes it looks at are bounded by
/// `limit`, which also bounds what the caller buffers. Lengths are checked against what
/// encloses them (RFC 8446 section 4.1.2, RFC 6066 section 3), and anything that does not add
/// up is `malformed`, never a crash.
public enum TLSClientHello {
    public enum Outcome: Equatable, Sendable {
        /// The bytes so far are a valid beginning; read more.
        case needMoreBytes
        /// The whole ClientHello arrived; `serverName` is nil when it has no `server_name`.
        case complete(serverName: String?)
        /// The first bytes are not a TLS handshake record (plain HTTP, SSLv2, noise).
        case notTLS
        case malformed(String)
        /// More than `limit` bytes without a complete ClientHello.
        case tooLarge
    }

    /// Real ClientHellos are well under 2 KiB, post-quantum key shares included; 16 KiB is the
    /// most one TLS record carries.
    public static let defaultLimit = 16 * 1024

    private static let handshakeRecord: UInt8 = 22
    private static let clientHelloType: UInt8 = 1
    private static let serverNameExtension = 0
    private static let hostNameType: UInt8 = 0
    private static let maxRecordLength = 1 << 14

    public static func parse(_ bytes: [UInt8], limit: Int = defaultLimit) -> Outcome {
        bytes.withUnsafeBytes { parse($0, limit: limit) }
    }

    public static func parse(_ bytes: UnsafeRawBufferPointer, limit: Int = defaultLimit) -> Outcome {
        // The handshake message, put back together from the payloads of the records that carry it.
        var handshake: [UInt8] = []
        var offset = 0
        var firstRecord = true
        while true {
            guard bytes.count - offset >= 5 else { return bytes.count > limit ? .tooLarge : .needMoreBytes }
            let type = bytes[offset], major = bytes[offset + 1]
            let length = Int(bytes[offset + 3]) << 8 | Int(bytes[offset + 4])
            if type != handshakeRecord || major != 3 {
                return firstRecord ? .notTLS : .malformed("a record that is not a handshake record came before the ClientHello ended")
            }
            guard length > 0 else { return .malformed("an empty handshake record") }
            guard length <= maxRecordLength else { return .malformed("a record longer than 16 KiB") }
            // Record headers count too: a hello cut into tiny records costs more than its length.
            guard offset + 5 + length <= limit else { return .tooLarge }
            guard bytes.count - offset - 5 >= length else { return .needMoreBytes }
            handshake.append(contentsOf: bytes[(offset + 5)..<(offset + 5 + length)])
            offset += 5 + length
            firstRecord = false
            guard handshake.count >= 4 else { continue }
            guard handshake[0] == clientHelloType else { return .malformed("the first handshake message is not a ClientHello") }
            let helloLength = Int(handshake[1]) << 16 | Int(handshake[2]) << 8 | Int(handshake[3])
            guard 4 + helloLength + 5 <= limit else { return .tooLarge }
            guard handshake.count >= 4 + helloLength else { continue }
            return handshake.withUnsafeBytes { body in
                serverName(in: UnsafeRawBufferPointer(rebasing: body[4..<(4 + helloLength)]))
            }
        }
    }

    /// The ClientHello body after its 4-byte header.
    private static func serverName(in body: UnsafeRawBufferPointer) -> Outcome {
        var reader = Reader(body)
        guard reader.skip(2 + 32) else { return .malformed("a ClientHello shorter than its version and random") }
        guard let sessionID = reader.u8(), sessionID <= 32, reader.skip(Int(sessionID)) else {
            return .malformed("a bad session id length")
        }
        guard let suites = reader.u16(), suites >= 2, suites % 2 == 0, reader.skip(suites) else {
            return .malformed("a bad cipher suites length")
        }
        guard let compressions = reader.u8(), compressions >= 1, reader.skip(Int(compressions)) else {
            return .malformed("a bad compression methods length")
        }
        // Extensions are optional (a TLS 1.2 client may send none, and so no server name).
        if reader.atEnd { return .complete(serverName: nil) }
        guard let extensionsLength = reader.u16(), extensionsLength == reader.remaining else {
            return .malformed("the extensions length does not match the ClientHello length")
        }
        var name: String?
        var sawServerName = false
        while !reader.atEnd {
            guard let type = reader.u16(), let length = reader.u16(), let data = reader.take(length) else {
                return .malformed("an extension longer than the extensions")
            }
            guard type == serverNameExtension else { continue }
            guard !sawServerName else { return .malformed("two server_name extensions") }
            sawServerName = true
            switch hostName(in: data) {
            case .success(let found): name = found
            case .failure(let problem): return .malformed(problem.message)
            }
        }
        return .complete(serverName: name)
    }

    struct Problem: Error {
        var message: String
    }

    /// The `host_name` entry of a `server_name` extension's list (RFC 6066 section 3).
    private static func hostName(in data: UnsafeRawBufferPointer) -> Result<String?, Problem> {
        var reader = Reader(data)
        guard let listLength = reader.u16(), listLength == reader.remaining, listLength > 0 else {
            return .failure(Problem(message: "the server name list length does not match its extension"))
        }
        var found: String?
        while !reader.atEnd {
            guard let type = reader.u8(), let length = reader.u16(), let name = reader.take(length) else {
                return .failure(Problem(message: "a server name longer than its list"))
            }
            guard type == hostNameType, found == nil else { continue }
            guard length > 0, name.allSatisfy(isHostNameByte) else {
                return .failure(Problem(message: "a server name that is not a DNS host name"))
            }
            found = String(decoding: name, as: UTF8.self)
        }
        return .success(found)
    }

    private static func isHostNameByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
             UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"):
            return true
        default:
            return false
        }
    }

    /// Big-endian reads that stop at the end instead of trapping.
    private struct Reader {
        let bytes: UnsafeRawBufferPointer
        var offset = 0

        init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

        var remaining: Int { bytes.count - offset }
        var atEnd: Bool { offset == bytes.count }

        mutating func skip(_ count: Int) -> Bool {
            guard count <= remaining else { return false }
            offset += count
            return true
        }

        mutating func u8() -> UInt8? {
            guard remaining >= 1 else { return nil }
            defer { offset += 1 }
            return bytes[offset]
        }

        mutating func u16() -> Int? {
            guard remaining >= 2 else { return nil }
            defer { offset += 2 }
            return Int(bytes[offset]) << 8 | Int(bytes[offset + 1])
        }

        mutating func take(_ count: Int) -> UnsafeRawBufferPointer? {
            guard count <= remaining else { return nil }
            defer { offset += count }
            return UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + count)])
        }
    }
}
