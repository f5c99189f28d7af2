import NIOCore

/// A parsed response head: the received bytes and where each part sits in them.
public struct HTTP1ResponseHead: Sendable {
    /// The fields; `fields.storage` is the whole head as it arrived, status line included.
    public let fields: HTTPFieldList
    public let version: HTTP1Version
    /// The status code, 100 to 599.
    public let status: Int
    let reasonRange: Range<Int>
    /// How the body that follows is delimited, given the request it answers.
    public let framing: HTTP1BodyFraming
    /// Whether the upstream connection may carry another exchange after this one.
    public let keepAlive: Bool

    init(
        fields: HTTPFieldList,
        line: HTTP1StatusLine,
        framing: HTTP1BodyFraming,
        keepAlive: Bool
    ) {
        self.fields = fields
        self.version = line.version
        self.status = line.status
        self.reasonRange = line.reason
        self.framing = framing
        self.keepAlive = keepAlive
    }

    /// The whole head as received, from the status line to the empty line.
    public var bytes: ByteBuffer { self.fields.storage }

    /// Whether this is an interim (1xx) response other than 101: the final response follows.
    public var isInformational: Bool { (100..<200).contains(self.status) && self.status != 101 }

    /// The reason phrase as a `String`; allocates unless it is short (15 bytes or fewer).
    public var reason: String {
        let storage = self.fields.storage
        return storage.getString(at: storage.readerIndex + self.reasonRange.lowerBound, length: self.reasonRange.count)!
    }
}
