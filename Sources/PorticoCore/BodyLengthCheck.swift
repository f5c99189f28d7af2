/// What an HTTP/2 message's `content-length` leaves to come, counted as its DATA arrives
/// (RFC 9113 8.1.1): a body that runs past it, or ends short of it, makes the message
/// malformed. Without one, any length goes.
///
/// A proxy that believed the header and not the frames (or the frames and not the header)
/// would frame the message differently on an HTTP/1 connection: the rest of a body read there
/// as the next request is request smuggling (H2.CL).
public struct BodyLengthCheck: Sendable, Equatable {
    private var due: Int?

    public init(declared: Int?) {
        self.due = declared
    }

    /// Counts `bytes` more of the body; `ending` when the message ends with them. False when
    /// they break the declared length (nothing is counted then).
    public mutating func count(_ bytes: Int, ending: Bool) -> Bool {
        guard let due else { return true }
        guard bytes <= due, !ending || bytes == due else { return false }
        self.due = due - bytes
        return true
    }
}
