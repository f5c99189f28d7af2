import NIOCore

/// Follows the frame boundaries of the bytes an HTTP/2 client sends, to spot a HEADERS frame on
/// a stream the client has already closed, before `NIOHTTP2Handler` decodes it.
///
/// RFC 9113 5.1 makes that a STREAM_CLOSED error. `NIOHTTP2Handler` answers it with a
/// PROTOCOL_ERROR GOAWAY instead: it reads any HEADERS below the highest stream id as an attempt
/// to open a stream with a used id (5.1.1). Dropping the frame in front of it is not an option,
/// because its header block must be decoded to keep HPACK in step. So the guard in front of the
/// handler answers this one connection error itself, and no byte of the frame reaches the
/// decoder. Only the client's half of each stream is followed: once the client has ended a
/// stream (END_STREAM) or reset it, no HEADERS of its own may follow, whatever the response is
/// doing. Pure: bytes in, a verdict out.
struct HTTP2ClientStreamTracker {
    /// The connection preface a client opens with (RFC 9113 3.4).
    static let preface: [UInt8] = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)
    /// Past this many streams the client keeps open, the tracker stops: the handler's own
    /// concurrency limit is 256, and a client cannot hold more open, so only streams the server
    /// refused or reset without the client's knowledge pile up here.
    static let maximumTrackedStreams = 1024
    /// How many streams the server reset are remembered. A frame the client sent before it
    /// learnt of the reset is the handler's to ignore (RFC 9113 5.1), as swift-nio-http2
    /// remembers its own recent resets.
    static let rememberedResets = 32

    private enum State {
        /// Matching the preface: `matched` bytes of it so far.
        case preface(matched: Int)
        /// Reading a 9-byte frame header: `read` bytes of it so far.
        case header(read: Int)
        /// Skipping the rest of a frame's payload.
        case payload(remaining: Int)
        /// Not following any more: a verdict was given, or the bytes are not HTTP/2 (the
        /// handler answers those itself).
        case stopped
    }

    private var state = State.preface(matched: 0)
    private var length = 0
    private var type: UInt8 = 0
    private var flags: UInt8 = 0
    private var streamID: UInt32 = 0

    /// The highest stream id the client has opened: the last stream a GOAWAY reports as seen.
    private(set) var lastStreamID: UInt32 = 0
    /// The streams the client has opened and has neither ended nor reset.
    private var clientOpen = Set<UInt32>()
    private var resetByServer = [UInt32]()
    private var nextResetSlot = 0

    /// Takes the next received bytes, in order. Returns where, in `bytes`, the first HEADERS
    /// frame on a stream the client has closed begins (0 when its header began in an earlier
    /// read), or nil when there is none. After a verdict the tracker stops.
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
                let byte = bytes[index]
                index += 1
                switch read {
                case 0: length = Int(byte)
                case 1, 2: length = length << 8 | Int(byte)
                case 3: type = byte
                case 4: flags = byte
                case 5: streamID = UInt32(byte & 0x7f)
                default: streamID = streamID << 8 | UInt32(byte)
                }
                guard read == 8 else {
                    state = .header(read: read + 1)
                    continue
                }
                state = length == 0 ? .header(read: 0) : .payload(remaining: length)
                if !frameHeaderRead() {
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

    /// The server reset `streamID` (an RST_STREAM went out): the client's HEADERS already on
    /// the way are not an error, and the stream is no longer the client's to send on.
    mutating func serverReset(_ streamID: UInt32) {
        clientOpen.remove(streamID)
        if resetByServer.count < Self.rememberedResets {
            resetByServer.append(streamID)
        } else {
            resetByServer[nextResetSlot] = streamID
            nextResetSlot = (nextResetSlot + 1) % Self.rememberedResets
        }
    }

    /// Follows one frame's effect on the client's half of its stream; false when the frame is
    /// HEADERS on a stream the client has closed.
    private mutating func frameHeaderRead() -> Bool {
        let endStream = flags & 0x1 != 0
        switch type {
        case 0x0 where endStream: // DATA that ends the client's half.
            clientOpen.remove(streamID)
        case 0x3: // RST_STREAM from the client.
            clientOpen.remove(streamID)
        case 0x1:
            // Stream 0 and even ids are the handler's to refuse (PROTOCOL_ERROR).
            guard streamID != 0, streamID & 1 == 1 else { return true }
            if streamID > lastStreamID {
                lastStreamID = streamID
                if !endStream { open(streamID) }
            } else if clientOpen.contains(streamID) {
                // Trailers.
                if endStream { clientOpen.remove(streamID) }
            } else if !resetByServer.contains(streamID) {
                return false
            }
        default:
            break
        }
        return true
    }

    private mutating func open(_ streamID: UInt32) {
        guard clientOpen.count < Self.maximumTrackedStreams else {
            // Too many to follow: the handler's answer stands from here on.
            state = .stopped
            return
        }
        clientOpen.insert(streamID)
    }
}
