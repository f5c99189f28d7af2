/// Follows the framing of the HTTP/1 requests a client sends, as raw bytes, far enough to read
/// every chunk size, and says when one does not fit in 63 bits.
///
/// NIO's decoder (llhttp) accepts any chunk size that fits 64 bits; nginx, HAProxy and most
/// backends keep sizes in a signed 64-bit integer, so a size of 2^63 or more means something
/// different to each of them. The decoder does not show chunk sizes to its user, so this reads
/// them beside it. It is not a parser: whatever it does not follow (an upgrade, CONNECT, a
/// length it cannot read) makes it stand aside for the rest of the connection and leaves the
/// verdict to the decoder, which refuses malformed input by itself. An upgrade request stops it
/// where llhttp stops: after the message, since llhttp reads an upgrade request's body first.
///
/// A byte automaton that keeps no copy of what it reads: it matches the three field names that
/// matter as the bytes go by. Pure: bytes in, a verdict out.
struct ChunkSizeScanner {
    enum Verdict: Equatable {
        case fine
        /// A chunk size of 2^63 or more: the request that starts at `messageStart` in the
        /// bytes just scanned (0 when it started in earlier ones) must be refused; the
        /// requests before it are fine.
        case overflow(messageStart: Int)
    }

    private enum Phase: Equatable {
        /// The request line (and empty lines before it).
        case requestLine
        /// The start of a field line, or of the empty line that ends the head.
        case lineStart
        /// A field name, matched against the names below.
        case name
        /// A field value, read as `field` says.
        case value
        /// The rest of a line that does not matter.
        case skipLine
        /// Skipping a `Content-Length` body.
        case fixedBody(remaining: Int)
        /// Reading a chunk-size line (size, extensions) up to its LF.
        case chunkSize
        /// Skipping a chunk's data.
        case chunkData(remaining: UInt64)
        /// The CRLF after a chunk's data.
        case chunkDataEnd
        /// Trailer lines up to an empty one.
        case trailers
        /// No longer following: the decoder alone judges what comes.
        case standingAside
    }

    private enum Field {
        case transferEncoding, contentLength, connection, other
    }

    private static let transferEncoding: StaticString = "transfer-encoding"
    private static let contentLength: StaticString = "content-length"
    private static let upgrade: StaticString = "upgrade"
    private static let connection: StaticString = "connection"
    private static let connect: StaticString = "CONNECT "
    private static let chunked: StaticString = "chunked"

    private var phase = Phase.requestLine
    /// Bytes of the current name (or of `CONNECT ` on the request line) seen so far.
    private var position = 0
    /// Which of transfer-encoding (1), content-length (2), upgrade (4), connection (8) the name
    /// may still be.
    private var candidates: UInt8 = 0
    private var field = Field.other
    /// What the head read so far says about the body.
    private var chunkedBody = false
    private var contentLengthValue = 0
    /// CONNECT: what follows the head is a tunnel.
    private var isConnect = false
    /// `Upgrade`, and `Connection: upgrade`: llhttp stops after this message.
    private var hasUpgradeField = false
    private var connectionSaysUpgrade = false
    private var standAsideAfterMessage = false
    /// A message ended at the byte just taken.
    private var messageEnded = false
    private var requestLineStarted = false
    /// The current token of a `Transfer-Encoding` value (matched against `chunked`, and only the
    /// last one counts) or of a `Connection` value (matched against `upgrade`).
    private var codingMatched = 0
    private var codingBad = false
    private var codingEnded = false
    /// The chunk size read so far on this line.
    private var size: UInt64 = 0
    private var sizeDigits = 0
    private var sizeEnded = false

    /// Takes the next bytes the client sent, in order.
    mutating func scan(_ bytes: UnsafeRawBufferPointer) -> Verdict {
        var index = 0
        var messageStart = 0
        let count = bytes.count
        while index < count {
            switch phase {
            case .standingAside:
                return .fine
            case .fixedBody(let remaining):
                let taken = min(remaining, count - index)
                index += taken
                if taken == remaining { endMessage() } else { phase = .fixedBody(remaining: remaining - taken) }
            case .chunkData(let remaining):
                let taken = Int(min(remaining, UInt64(count - index)))
                index += taken
                phase = UInt64(taken) == remaining ? .chunkDataEnd : .chunkData(remaining: remaining - UInt64(taken))
            default:
                if !take(bytes[index]) {
                    phase = .standingAside
                    return .overflow(messageStart: messageStart)
                }
                index += 1
            }
            if messageEnded {
                messageEnded = false
                messageStart = index
            }
        }
        return .fine
    }

    /// Takes one byte; false when it makes a chunk size overflow.
    private mutating func take(_ byte: UInt8) -> Bool {
        let isLF = byte == UInt8(ascii: "\n")
        switch phase {
        case .requestLine:
            if isLF {
                // Empty lines before a request line are allowed (RFC 9112 2.2).
                if requestLineStarted { phase = .lineStart }
            } else if byte != UInt8(ascii: "\r") {
                if !requestLineStarted {
                    requestLineStarted = true
                    position = 0
                }
                if position >= 0 && position < Self.connect.utf8CodeUnitCount {
                    position = byte == Self.connect.utf8Start[position] ? position + 1 : -1
                    if position == Self.connect.utf8CodeUnitCount { isConnect = true }
                }
            }
        case .lineStart:
            if isLF {
                endHead()
            } else if byte != UInt8(ascii: "\r") {
                phase = .name
                position = 0
                candidates = 0b1111
                matchName(byte)
            }
        case .name:
            if isLF {
                phase = .lineStart
            } else if byte == UInt8(ascii: ":") {
                startValue()
            } else {
                matchName(byte)
            }
        case .value:
            if isLF {
                endValue()
                phase = .lineStart
            } else {
                readValue(byte)
            }
        case .skipLine:
            if isLF { phase = .lineStart }
        case .chunkDataEnd:
            if isLF { startChunkSize() }
        case .chunkSize:
            if isLF {
                guard sizeDigits > 0 else {
                    phase = .standingAside
                    return true
                }
                phase = size == 0 ? .trailers : .chunkData(remaining: size)
                position = 0
                return true
            }
            guard !sizeEnded, let digit = Self.hexValue(byte) else {
                sizeEnded = true
                return true
            }
            sizeDigits += 1
            // Leading zeros are not an overflow; a 16th significant digit or the top bit is.
            if size >> 59 != 0 { return false }
            size = size << 4 | UInt64(digit)
            if size > UInt64(Int64.max) { return false }
        case .trailers:
            if isLF {
                if position == 0 { endMessage() }  // the empty line that ends the message
                position = 0
            } else if byte != UInt8(ascii: "\r") {
                position += 1
            }
        case .fixedBody, .chunkData, .standingAside:
            break
        }
        return true
    }

    private mutating func matchName(_ byte: UInt8) {
        let folded = byte >= 65 && byte <= 90 ? byte | 0x20 : byte
        if candidates & 1 != 0 && !Self.matches(Self.transferEncoding, position, folded) { candidates &= ~1 }
        if candidates & 2 != 0 && !Self.matches(Self.contentLength, position, folded) { candidates &= ~2 }
        if candidates & 4 != 0 && !Self.matches(Self.upgrade, position, folded) { candidates &= ~4 }
        if candidates & 8 != 0 && !Self.matches(Self.connection, position, folded) { candidates &= ~8 }
        position += 1
        if candidates == 0 { phase = .skipLine }
    }

    private static func matches(_ name: StaticString, _ position: Int, _ byte: UInt8) -> Bool {
        position < name.utf8CodeUnitCount && name.utf8Start[position] == byte
    }

    private mutating func startValue() {
        field = .other
        if candidates & 1 != 0 && position == Self.transferEncoding.utf8CodeUnitCount {
            field = .transferEncoding
            codingMatched = 0
            codingBad = false
            codingEnded = false
        } else if candidates & 2 != 0 && position == Self.contentLength.utf8CodeUnitCount {
            field = .contentLength
            contentLengthValue = 0
        } else if candidates & 4 != 0 && position == Self.upgrade.utf8CodeUnitCount {
            hasUpgradeField = true
        } else if candidates & 8 != 0 && position == Self.connection.utf8CodeUnitCount {
            field = .connection
            codingMatched = 0
            codingBad = false
            codingEnded = false
        }
        phase = field == .other ? .skipLine : .value
    }

    private mutating func readValue(_ byte: UInt8) {
        let isSpace = byte == 0x20 || byte == 0x09 || byte == UInt8(ascii: "\r")
        switch field {
        case .transferEncoding, .connection:
            // A `Transfer-Encoding`'s last coding must be `chunked` (anything else is refused
            // by the gateway before any body is read); any `Connection` token may be `upgrade`.
            let token = field == .transferEncoding ? Self.chunked : Self.upgrade
            if byte == UInt8(ascii: ",") {
                endToken()
                codingMatched = 0
                codingBad = false
                codingEnded = false
            } else if isSpace {
                if codingMatched > 0 || codingBad { codingEnded = true }
            } else if codingEnded || codingBad || codingMatched == token.utf8CodeUnitCount {
                codingBad = true
            } else {
                let folded = byte >= 65 && byte <= 90 ? byte | 0x20 : byte
                if token.utf8Start[codingMatched] == folded { codingMatched += 1 } else { codingBad = true }
            }
        case .contentLength:
            if isSpace { return }
            guard byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9"), contentLengthValue < Int.max / 10 - 10 else {
                phase = .standingAside
                return
            }
            contentLengthValue = contentLengthValue * 10 + Int(byte - UInt8(ascii: "0"))
        case .other:
            break
        }
    }

    private mutating func endValue() {
        if field == .transferEncoding {
            chunkedBody = !codingBad && codingMatched == Self.chunked.utf8CodeUnitCount
        } else if field == .connection {
            endToken()
        }
    }

    private mutating func endToken() {
        if field == .connection && !codingBad && codingMatched == Self.upgrade.utf8CodeUnitCount {
            connectionSaysUpgrade = true
        }
    }

    /// The head is over: what follows is its body, then the next request.
    private mutating func endHead() {
        // After CONNECT, and after an upgrade request's body, llhttp stops: the bytes may be
        // another protocol's.
        standAsideAfterMessage = hasUpgradeField && connectionSaysUpgrade
        if isConnect {
            phase = .standingAside
        } else if chunkedBody {
            startChunkSize()
        } else if contentLengthValue > 0 {
            phase = .fixedBody(remaining: contentLengthValue)
        } else {
            endMessage()
        }
        chunkedBody = false
        contentLengthValue = 0
    }

    private mutating func endMessage() {
        messageEnded = true
        if standAsideAfterMessage {
            phase = .standingAside
        } else {
            startRequest()
        }
    }

    private mutating func startChunkSize() {
        phase = .chunkSize
        size = 0
        sizeDigits = 0
        sizeEnded = false
    }

    private mutating func startRequest() {
        phase = .requestLine
        requestLineStarted = false
        position = 0
        isConnect = false
        hasUpgradeField = false
        connectionSaysUpgrade = false
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}
