import NIOCore

/// Follows the frame boundaries of the bytes an HTTP/2 connection writes, to spot a GOAWAY
/// that reports an error (RFC 9113 6.8), without decoding anything else.
///
/// `NIOHTTP2Handler` answers a connection error with such a GOAWAY and then only reports the
/// error, with the same error types it uses for stream errors: the frame on the wire is the one
/// unambiguous sign that the connection is over. Pure: bytes in, a verdict out.
struct HTTP2FrameScanner {
    /// Frame type GOAWAY (RFC 9113 6.8).
    private static let goAwayType: UInt8 = 0x7

    private enum State {
        /// Collecting a 9-byte frame header; `header` holds what arrived so far.
        case header
        /// Skipping the rest of a frame's payload.
        case payload(remaining: Int)
        /// Collecting a GOAWAY's first 8 payload bytes (last stream id, error code).
        case goAway(remaining: Int)
    }

    private var state = State.header
    private var header: [UInt8] = []
    private var goAwayPrefix: [UInt8] = []

    /// True once a GOAWAY with an error code other than NO_ERROR went by.
    private(set) var sawErrorGoAway = false

    /// Takes the next written bytes, in order.
    mutating func scan(_ bytes: ByteBufferView) {
        var index = bytes.startIndex
        while index < bytes.endIndex, !sawErrorGoAway {
            switch state {
            case .header:
                header.append(bytes[index])
                index += 1
                guard header.count == 9 else { continue }
                let length = Int(header[0]) << 16 | Int(header[1]) << 8 | Int(header[2])
                let type = header[3]
                header.removeAll(keepingCapacity: true)
                if type == Self.goAwayType && length >= 8 {
                    goAwayPrefix.removeAll(keepingCapacity: true)
                    state = .goAway(remaining: length)
                } else {
                    state = length == 0 ? .header : .payload(remaining: length)
                }
            case .payload(let remaining):
                let taken = min(remaining, bytes.endIndex - index)
                index += taken
                state = remaining == taken ? .header : .payload(remaining: remaining - taken)
            case .goAway(let remaining):
                goAwayPrefix.append(bytes[index])
                index += 1
                if goAwayPrefix.count == 8 {
                    let code = goAwayPrefix[4...7].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
                    if code != 0 { sawErrorGoAway = true }
                    state = remaining == 1 ? .header : .payload(remaining: remaining - 1)
                } else {
                    state = .goAway(remaining: remaining - 1)
                }
            }
        }
    }
}
