/// `HTTP-version SP status-code SP [ reason-phrase ]` (RFC 9112 §4), as ranges into the head.
struct HTTP1StatusLine {
    var version: HTTP1Version
    var status: Int
    var reason: Range<Int>

    /// Parses the line at `line` in `bytes` (CRLF excluded). A missing space after the code
    /// (`HTTP/1.1 200`) is accepted: many servers send it, and it cannot change the framing.
    static func parse(_ bytes: UnsafeRawBufferPointer, _ line: Range<Int>) -> HTTP1StatusLine? {
        let start = line.lowerBound
        guard line.count >= 12,
            let version = HTTP1Version.parse(UnsafeRawBufferPointer(rebasing: bytes[start..<start + 8])),
            bytes[start + 8] == UInt8(ascii: " ")
        else { return nil }
        var status = 0
        for index in start + 9..<start + 12 {
            guard HTTP1ByteClass.digit.contains(bytes[index]) else { return nil }
            status = status * 10 + Int(bytes[index] &- UInt8(ascii: "0"))
        }
        guard (100...599).contains(status) else { return nil }
        if line.count == 12 {
            return HTTP1StatusLine(version: version, status: status, reason: line.upperBound..<line.upperBound)
        }
        // The reason phrase may hold any line byte; the scanner has already refused the rest.
        guard bytes[start + 12] == UInt8(ascii: " ") else { return nil }
        return HTTP1StatusLine(version: version, status: status, reason: start + 13..<line.upperBound)
    }
}
