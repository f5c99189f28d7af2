/// When a proxy may give an HTTP/2 peer more room to send (WINDOW_UPDATE), for one stream or
/// for the connection: only for bytes the upstream has taken, never ahead of use, so a slow
/// upstream slows the client instead of filling the gateway's memory (nghttpx's rule, with
/// automatic window updates off).
///
/// The peer's window, as the gateway sees it, goes down as DATA arrives; bytes the upstream has
/// consumed become credit to return; the credit is returned once the window has fallen to half
/// its target or below (as swift-nio-http2's `InboundWindowManager` batches its updates), so an
/// update is not sent for every frame. At any moment the window plus the bytes held for the
/// upstream is at most the target. Pure: sizes in, increments out.
public struct InboundFlowCredit: Sendable, Equatable {
    /// The window the gateway advertises (SETTINGS_INITIAL_WINDOW_SIZE, or the connection's).
    public private(set) var target: Int
    /// What the peer may still send.
    public private(set) var window: Int
    /// Received, not yet taken by the upstream.
    public private(set) var held = 0
    /// Taken by the upstream, not yet returned to the peer.
    public private(set) var unreturned = 0

    public init(target: Int) {
        precondition(target >= 0 && target <= Int(Int32.max), "an HTTP/2 window is 0 to 2^31-1")
        self.target = target
        self.window = target
    }

    /// What a DATA frame's arrival did to the window.
    public enum Receipt: Sendable, Equatable {
        case accepted
        /// The peer sent more than its window allowed: a FLOW_CONTROL_ERROR (RFC 9113 6.9.1).
        case overrun
    }

    /// A DATA frame of `size` flow-controlled bytes (padding included) arrived.
    public mutating func received(_ size: Int) -> Receipt {
        guard size <= window else { return .overrun }
        window -= size
        held += size
        return .accepted
    }

    /// The upstream took `size` of the held bytes (or padding, which nobody takes, was dropped).
    /// Returns the WINDOW_UPDATE increment to send now, if any.
    public mutating func consumed(_ size: Int) -> Int? {
        precondition(size <= held, "more bytes consumed than were held")
        held -= size
        unreturned += size
        return creditDue()
    }

    /// The stream ended (or was reset) with bytes still held: they will never be taken, and
    /// are returned to the connection's window at once (a stream's own window dies with it).
    public mutating func discardHeld() -> Int? {
        unreturned += held
        held = 0
        return creditDue()
    }

    /// SETTINGS_INITIAL_WINDOW_SIZE changed (for a stream window): the window moves by the same
    /// amount (RFC 9113 6.9.2), and may now be owed credit.
    public mutating func targetChanged(to newTarget: Int) -> Int? {
        precondition(newTarget >= 0 && newTarget <= Int(Int32.max), "an HTTP/2 window is 0 to 2^31-1")
        window += newTarget - target
        target = newTarget
        return creditDue()
    }

    private mutating func creditDue() -> Int? {
        guard unreturned > 0, window <= target / 2 else { return nil }
        // Never past the target: what is held is still owed to the upstream.
        let increment = min(unreturned, target - held - window)
        guard increment > 0 else { return nil }
        window += increment
        unreturned -= increment
        return increment
    }
}
