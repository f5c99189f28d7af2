/// Bounds on what a parser holds for one head, so a peer cannot make it buffer without end.
public struct HTTP1ParserLimits: Sendable, Hashable {
    /// The largest head, start line to empty line included (431 for a request, 502 for a
    /// response). The same bound applies to a trailer section.
    public var maxHeadBytes: Int
    /// The most field lines in a head or a trailer section, the same way.
    public var maxFields: Int

    public init(maxHeadBytes: Int = 60 * 1024, maxFields: Int = 1000) {
        self.maxHeadBytes = maxHeadBytes
        self.maxFields = maxFields
    }
}
