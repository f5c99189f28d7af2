/// An HTTP/2 frame header (RFC 9113 4.1), read a byte at a time by the scanners that follow a
/// connection's frames without decoding them (`HTTP2FrameScanner`, `HTTP2ClientStreamTracker`).
struct HTTP2FrameHeader {
    var length = 0
    var type: UInt8 = 0
    var flags: UInt8 = 0
    var streamID: UInt32 = 0

    /// Takes the header's byte at `position` (0 to 8, in order).
    mutating func take(_ byte: UInt8, at position: Int) {
        switch position {
        case 0: length = Int(byte)
        case 1, 2: length = length << 8 | Int(byte)
        case 3: type = byte
        case 4: flags = byte
        case 5: streamID = UInt32(byte & 0x7f)
        default: streamID = streamID << 8 | UInt32(byte)
        }
    }
}
