import NIOCore

extension ByteBuffer {
    /// Adds bytes a parser received behind what it has not parsed yet. The first buffer is
    /// kept as it came (no copy); later ones are appended after dropping what was parsed.
    mutating func appendReceived(_ bytes: ByteBuffer) {
        if self.readableBytes == 0 {
            self = bytes
        } else {
            if self.readerIndex > 0 { self.discardReadBytes() }
            var bytes = bytes
            self.writeBuffer(&bytes)
        }
    }
}
