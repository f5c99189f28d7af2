import NIOCore

/// Follows the frame boundaries of the bytes an HTTP/2 client sends, and the resets the server
/// writes back, to spot HEADERS on a stream whose client half is closed before
/// `NIOHTTP2Handler` decodes it.
///
/// RFC 9113 5.1 makes HEADERS on a closed or half-closed (remote) stream a STREAM_CLOSED error.
/// `NIOHTTP2Handler` gets the code wrong in both states: on a closed stream it sends a
/// PROTOCOL_ERROR GOAWAY (it has forgotten the stream, and reads any HEADERS below the highest
/// id as an attempt to reuse one, 5.1.1); on a half-closed one it resets the stream with
/// PROTOCOL_ERROR. Dropping the frame in front of it is not an option, because its header block
/// must be decoded to keep HPACK in step. So the guard in front of the handler answers both with
/// a STREAM_CLOSED connection error, and no byte of the frame reaches the decoder. nghttp2 (and
/// so Envoy) makes the half-closed case a connection error too: a client that sends HEADERS
/// after ending its stream is broken.
///
/// What stays the handler's: new streams, stream 0 and even ids, and HEADERS on an id below the
/// highest that was never opened (PROTOCOL_ERROR, 5.1.1). Pure: bytes and frame headers in, a
/// verdict out.
struct HTTP2ClientStreamTracker {
    /// The connection preface a client opens with (RFC 9113 3.4).
    static let preface: [UInt8] = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)
    /// Past this many streams with the client's half open, the tracker stops and the handler's
    /// answers stand. A client cannot hold more than the advertised 256 concurrent streams; what
    /// can pile up is streams the handler ignores after a graceful GOAWAY, until the close.
    static let maximumTrackedStreams = 1024
    /// Past this many runs of opened ids (a client that skips ids), the tracker stops too.
    static let maximumOpenedRuns = 64

    private enum State {
        /// Matching the preface: `matched` bytes of it so far.
        case preface(matched: Int)
        /// Reading a 9-byte frame header: `read` bytes of it so far.
        case header(read: Int)
        /// Skipping the rest of a frame's payload.
        case payload(remaining: Int)
        /// Not following any more: a verdict was given, too much to follow, or the bytes are not
        /// HTTP/2 (the handler answers those itself).
        case stopped
    }

    private var state = State.preface(matched: 0)
    private var header = HTTP2FrameHeader()

    /// The highest stream id the client has opened.
    private(set) var lastStreamID: UInt32 = 0
    /// The ids the client opened, as runs of consecutive odd ids (`first...last`): the newest
    /// run, and the ones before it when the client skipped ids. A client that numbers its
    /// streams one after another, as clients do, has one run and no array (editing the last
    /// element of an array in place allocated on every stream in a debug build).
    private var newestRun: (first: UInt32, last: UInt32)?
    private var earlierRuns: [(first: UInt32, last: UInt32)] = []
    /// Streams whose client half is open: not ended (END_STREAM) and not reset by either side.
    private var clientOpen = Set<UInt32>()

    /// Takes the next received bytes, in order. Returns where, in `bytes`, the first HEADERS
    /// frame on a stream whose client half is closed begins (0 when its header began in an
    /// earlier read, whose bytes the handler holds as an incomplete frame), or nil when there is
    /// none. After a verdict the tracker stops.
    mutating func scan(_ bytes: ByteBufferView) -> Int? {
        var index = bytes.startIndex
        while index < bytes.endIndex {
            switch state {
            case .stopped:
                return nil
            case .preface(let matched):
                guard bytes[index] == Self.preface[matched] else {
                    state = .stopped
                    return nil
                }
                index += 1
                state = matched + 1 == Self.preface.count ? .header(read: 0) : .preface(matched: matched + 1)
            case .header(let read):
                header.take(bytes[index], at: read)
                index += 1
                guard read == 8 else {
                    state = .header(read: read + 1)
                    continue
                }
                state = header.length == 0 ? .header(read: 0) : .payload(remaining: header.length)
                if !clientFrame() {
                    state = .stopped
                    return max(0, index - 9 - bytes.startIndex)
                }
            case .payload(let remaining):
                let taken = min(remaining, bytes.endIndex - index)
                index += taken
                state = remaining == taken ? .header(read: 0) : .payload(remaining: remaining - taken)
            }
        }
        return nil
    }

    /// The server wrote a frame header. A reset closes the stream, the client's half too.
    ///
    /// HEADERS the client sent before it learnt of the reset are then an error here, where
    /// RFC 9113 5.1 asks to ignore them. Ignoring needs the header block decoded, which only the
    /// handler can do, and it ends the connection for them too (PROTOCOL_ERROR).
    mutating func serverFrame(_ header: HTTP2FrameHeader) {
        if header.type == 0x3 { clientOpen.remove(header.streamID) }
    }

    /// Follows one client frame's effect on its stream; false when the frame is HEADERS on a
    /// stream whose client half is closed.
    private mutating func clientFrame() -> Bool {
        let streamID = header.streamID
        let endStream = header.flags & 0x1 != 0
        switch header.type {
        case 0x0 where endStream: // DATA that ends the client's half.
            clientOpen.remove(streamID)
        case 0x3: // RST_STREAM closes the stream.
            clientOpen.remove(streamID)
        case 0x1:
            // Stream 0 and even ids are the handler's to refuse (PROTOCOL_ERROR).
            guard streamID != 0, streamID & 1 == 1 else { return true }
            if streamID > lastStreamID {
                open(streamID, endStream: endStream)
            } else if clientOpen.contains(streamID) {
                // Trailers.
                if endStream { clientOpen.remove(streamID) }
            } else if wasOpened(streamID) {
                return false
            }
        default:
            break
        }
        return true
    }

    private mutating func open(_ streamID: UInt32, endStream: Bool) {
        if let run = newestRun, run.last &+ 2 == streamID {
            newestRun = (run.first, streamID)
        } else {
            if let run = newestRun { earlierRuns.append(run) }
            newestRun = (streamID, streamID)
        }
        lastStreamID = streamID
        guard earlierRuns.count < Self.maximumOpenedRuns,
              clientOpen.count < Self.maximumTrackedStreams else {
            // Too much to follow: the handler's answers stand from here on.
            state = .stopped
            return
        }
        if !endStream { clientOpen.insert(streamID) }
    }

    private func wasOpened(_ streamID: UInt32) -> Bool {
        if let run = newestRun, run.first <= streamID && streamID <= run.last { return true }
        return earlierRuns.contains { $0.first <= streamID && streamID <= $0.last }
    }
}
