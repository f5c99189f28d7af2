import NIOCore

/// A parsed request head: the received bytes and where each part sits in them.
///
/// Nothing here was copied out of the received buffer: `method` and `target` are `String`s
/// made when asked, `methodBytes` and `targetBytes` are views.
public struct HTTP1RequestHead: Sendable {
    /// The fields; `fields.storage` is the whole head as it arrived, request line included.
    public let fields: HTTPFieldList
    let methodRange: Range<Int>
    let targetRange: Range<Int>
    public let version: HTTP1Version
    /// How the body that follows is delimited.
    public let framing: HTTP1BodyFraming
    /// Whether the connection may carry another request after this one: HTTP/1.1 unless
    /// `Connection: close`, HTTP/1.0 only with `Connection: keep-alive`.
    public let keepAlive: Bool
    /// Whether the client asks to switch protocols: `CONNECT`, or `Upgrade` named in
    /// `Connection`. The parser stops after this message until told what happened.
    public let isUpgradeRequest: Bool

    init(
        fields: HTTPFieldList,
        line: HTTP1RequestLine,
        framing: HTTP1BodyFraming,
        keepAlive: Bool,
        isUpgradeRequest: Bool
    ) {
        self.fields = fields
        self.methodRange = line.method
        self.targetRange = line.target
        self.version = line.version
        self.framing = framing
        self.keepAlive = keepAlive
        self.isUpgradeRequest = isUpgradeRequest
    }

    /// The whole head as received, from the request line to the empty line.
    public var bytes: ByteBuffer { self.fields.storage }

    public var methodBytes: ByteBufferView { self.view(self.methodRange) }
    public var targetBytes: ByteBufferView { self.view(self.targetRange) }

    /// The method as a `String`.
    public var method: String { self.string(self.methodRange) }
    /// The request-target as a `String`; allocates unless it is short (15 bytes or fewer).
    public var target: String { self.string(self.targetRange) }

    private func string(_ range: Range<Int>) -> String {
        let storage = self.fields.storage
        return storage.getString(at: storage.readerIndex + range.lowerBound, length: range.count)!
    }

    /// Whether the method is `method`; methods are case-sensitive (RFC 9110 §9.1).
    public func methodIs(_ method: StaticString) -> Bool {
        self.fields.storage.withUnsafeReadableBytes { bytes in
            HTTPFieldList.equals(UnsafeRawBufferPointer(rebasing: bytes[self.methodRange]), method)
        }
    }

    private func view(_ range: Range<Int>) -> ByteBufferView {
        let storage = self.fields.storage
        return storage.getSlice(at: storage.readerIndex + range.lowerBound, length: range.count)!.readableBytesView
    }
}
