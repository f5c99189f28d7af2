import NIOCore

/// One field of an `HTTPFieldList`: a view of its name and value bytes, no copy made.
public struct HTTPField: Sendable {
    let storage: ByteBuffer
    let entry: HTTPFieldList.Entry

    init(storage: ByteBuffer, entry: HTTPFieldList.Entry) {
        self.storage = storage
        self.entry = entry
    }

    /// The name's bytes as received (HTTP/1 keeps the sender's case).
    public var nameBytes: ByteBufferView {
        self.storage.getSlice(
            at: self.storage.readerIndex + Int(self.entry.nameStart),
            length: Int(self.entry.nameLength)
        )!.readableBytesView
    }

    /// The value's bytes, without leading and trailing whitespace.
    public var valueBytes: ByteBufferView {
        self.storage.getSlice(
            at: self.storage.readerIndex + Int(self.entry.valueStart),
            length: Int(self.entry.valueLength)
        )!.readableBytesView
    }

    /// The name as a `String`; allocates unless it is short (15 bytes or fewer).
    public var name: String { self.string(start: self.entry.nameStart, length: self.entry.nameLength) }

    /// The value as a `String`; allocates unless it is short. Bytes that are not UTF-8
    /// (obs-text) become U+FFFD.
    public var value: String { self.string(start: self.entry.valueStart, length: self.entry.valueLength) }

    /// Decoded from the raw bytes rather than from a view: no slice of the buffer is made.
    private func string(start: UInt32, length: UInt32) -> String {
        self.storage.getString(at: self.storage.readerIndex + Int(start), length: Int(length))!
    }

    /// Whether the field is named `name`, compared ignoring ASCII case.
    /// - Parameter name: the name in lowercase.
    public func hasName(_ name: StaticString) -> Bool {
        self.storage.withUnsafeReadableBytes { HTTPFieldList.nameMatches($0, self.entry, name) }
    }

    /// Whether the value equals `lowercase`, ignoring ASCII case (for tokens such as `chunked`).
    public func valueEqualsIgnoringCase(_ lowercase: StaticString) -> Bool {
        self.storage.withUnsafeReadableBytes { bytes in
            let start = Int(self.entry.valueStart)
            return HTTPFieldList.equalsIgnoringCase(
                UnsafeRawBufferPointer(rebasing: bytes[start..<start + Int(self.entry.valueLength)]),
                lowercase
            )
        }
    }
}
