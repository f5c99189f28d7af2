import NIOCore
import PorticoHTTP1

/// What an exchange holds of its upstream for one try: the request goes out as parts, the
/// response comes back to the attached delegate, and the try gives it back when done.
///
/// The exchange sees only this, not the codec behind it. `UpstreamConnection` (an HTTP/1.1
/// connection from an `UpstreamPool`) is the one implementation today; an HTTP/2 upstream
/// would add a stream on a shared connection, and the exchange would not change.
/// Every call happens on the request's event loop.
protocol LeasedUpstream: AnyObject {
    /// Whether the upstream takes more of the request body now (explicit backpressure: the
    /// client's reads wait while it does not).
    var isWritable: Bool { get }
    /// Requests this connection has been leased for (for `maxRequestsPerConnection`).
    var requestsServed: Int { get set }
    /// The socket to join to the client's after a 101 (nil once closed).
    var channel: Channel? { get }

    /// The next response belongs to `delegate`.
    func attach(_ delegate: UpstreamResponseDelegate)
    func send(_ part: RequestPart)
    func flush()
    /// The client's side drained its buffer: a read of the response held back can go now.
    func resumeReading()
    /// The try is done with it: back to its pool when `reusable` (and its last response allows
    /// that), closed otherwise.
    func release(reusable: Bool)
    /// A 101 was relayed: it leaves its pool and HTTP for a byte pipe. What its codec still
    /// emits of the 101 is dropped, and `messageEnded` runs once all of it was read.
    func leaveForUpgrade(messageEnded: @escaping () -> Void)
}

extension UpstreamConnection: LeasedUpstream {
    func release(reusable: Bool) {
        pool.release(self, reusable: reusable)
    }

    func leaveForUpgrade(messageEnded: @escaping () -> Void) {
        isUpgrading = true
        detach()
        pool.detach(self)
        onUpgradeMessageEnd = messageEnded
    }
}
