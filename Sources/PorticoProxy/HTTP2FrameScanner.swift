import NIOCore

/// Follows the frame boundaries of the bytes an HTTP/2 connection writes, to spot a GOAWAY
/// that reports an error (RFC 9113 6.8), without decoding anything else. Each frame's header
/// is also handed to whoever follows the streams (`HTTP2ClientStreamTracker`).
///
/// `NIOHTTP2Handler` answers a connection error with such a GOAWAY and then only reports the
/// error, with the same error types it uses for stream errors: the frame on the wire is the one
/// unambiguous sign that the connection is over. Pure: bytes in, a verdict out.
struct HTTP2FrameScanner {
    /// Frame type GOAWAY (RFC 9113 6.8).
    private static let goAwayType: UInt8 = 0x7

    private enum State {
        /// Reading a 9-byte frame header: `read` bytes of it so far.
        case header(read: Int)
        /// Skipping the rest of a frame's payload.
        case payload(remaining: Int)
        /// Reading a GOAWAY's first 8 payload bytes (last stream id, error code): `read` of
        /// them so far, of a payload of `length`.
        case goAway(read: Int, length: Int)
    }

    private var state = State.header(read: 0)
    /// The frame header, or the GOAWAY's fields, read so far (no buffer: no allocation).
    private var header = HTTP2FrameHeader()
    private var goAwayStreamID: UInt32 = 0
    private var errorCode: UInt32 = 0

    /// True once a GOAWAY with an error code other than NO_ERROR went by.
    private(set) var sawErrorGoAway = false
    /// The last stream id of the newest GOAWAY written, which a later GOAWAY must not exceed
    /// (RFC 9113 6.8).
    private(set) var lastGoAwayStreamID: UInt32?
    private var lostTrack = false

    /// Takes `count` written bytes that cannot be looked at (a file region): inside a frame's
    /// payload they are skipped; anywhere else the frames can no longer be followed, and the
    /// scanner stops (it never closes a connection it cannot read).
    mutating func skip(_ count: Int) {
        guard count > 0, !lostTrack else { return }
        if case .payload(let remaining) = state, count <= remaining {
            state = count == remaining ? .header(read: 0) : .payload(remaining: remaining - count)
        } else {
            lostTrack = true
        }
    }

    /// Takes the next written bytes, in order, and hands `frame` each frame header.
    mutating func scan(_ bytes: ByteBufferView, frame: (HTTP2FrameHeader) -> Void = { _ in }) {
        var index = bytes.startIndex
        while index < bytes.endIndex, !sawErrorGoAway, !lostTrack {
            switch state {
            case .header(let read):
                header.take(bytes[index], at: read)
                index += 1
                guard read == 8 else {
                    state = .header(read: read + 1)
                    continue
                }
                frame(header)
                let length = header.length
                if header.type == Self.goAwayType && length >= 8 {
                    goAwayStreamID = 0
                    errorCode = 0
                    state = .goAway(read: 0, length: length)
                } else {
                    state = length == 0 ? .header(read: 0) : .payload(remaining: length)
                }
            case .payload(let remaining):
                let taken = min(remaining, bytes.endIndex - index)
                index += taken
                state = remaining == taken ? .header(read: 0) : .payload(remaining: remaining - taken)
            case .goAway(let read, let length):
                let byte = bytes[index]
                if read == 0 {
                    goAwayStreamID = UInt32(byte & 0x7f)
                } else if read < 4 {
                    goAwayStreamID = goAwayStreamID << 8 | UInt32(byte)
                } else {
                    errorCode = errorCode << 8 | UInt32(byte)
                }
                index += 1
                guard read == 7 else {
                    state = .goAway(read: read + 1, length: length)
                    continue
                }
                lastGoAwayStreamID = goAwayStreamID
                if errorCode != 0 { sawErrorGoAway = true }
                state = length == 8 ? .header(read: 0) : .payload(remaining: length - 8)
            }
        }
    }
}
