import NIOCore
import PorticoHTTP1

/// A mirrored copy of a request (Istio's `mirror`): sent to the shadow service as the original
/// arrives, its answer read and dropped. It never slows or fails the original: it holds no
/// read back, and it gives up (closing its connection) when the shadow is slow to take the
/// body, when the original's timeout passes, or when anything goes wrong.
final class ShadowRequest: UpstreamResponseDelegate, UpstreamLeaseWaiter {
    /// Body bytes kept while the shadow's connection is not there yet, or will not take more.
    static let maxBuffered = 1 << 20

    private let pool: any UpstreamSource
    private let eventLoop: EventLoop
    private let finished: (Int?) -> Void
    /// The shadow's answer status, once its head arrived (for its span).
    private var responseStatus: Int?
    private var upstream: (any LeasedUpstream)?
    private var pending: [RequestPart]
    private var pendingBytes = 0
    private var waiterID: Int?
    private var timeoutTask: Scheduled<Void>?
    private var requestSent = false
    private var done = false

    /// `finished` runs once, when the shadow is over either way (to release its load-balancer
    /// slot, and end its span), with the answer's status if one came.
    init(head: RequestHead, pool: any UpstreamSource, eventLoop: EventLoop, timeout: TimeAmount,
         finished: @escaping (Int?) -> Void) {
        self.pool = pool
        self.eventLoop = eventLoop
        self.finished = finished
        self.pending = [.head(head)]
        // Both hold the shadow strongly: it lives on after the original request has ended,
        // until its own answer, its timeout, or a failure (each of which ends them).
        timeoutTask = eventLoop.assumeIsolated().scheduleTask(in: timeout) { [self] in
            giveUp()
        }
        let id = pool.lease(for: self)
        if !done && upstream == nil { waiterID = id }
    }

    func send(_ buffer: ByteBuffer) {
        guard !done else { return }
        // Behind anything still buffered, so the copy keeps the original's order.
        if let upstream, upstream.isWritable, pending.isEmpty {
            upstream.send(.body(buffer))
            upstream.flush()
            return
        }
        pendingBytes += buffer.readableBytes
        guard pendingBytes <= Self.maxBuffered else { return giveUp() }
        pending.append(.body(buffer))
    }

    func end(_ trailers: HTTPFieldList?) {
        guard !done else { return }
        if let upstream, pending.isEmpty {
            upstream.send(.end(trailers))
            upstream.flush()
            requestSent = true
        } else {
            pending.append(.end(trailers))
        }
    }

    func leaseCompleted(_ result: Result<any LeasedUpstream, UpstreamPoolError>) {
        waiterID = nil
        guard !done else {
            if case .success(let connection) = result { connection.release(reusable: true) }
            return
        }
        guard case .success(let connection) = result else { return giveUp() }
        upstream = connection
        connection.attach(self)
        flushPending()
    }

    private func flushPending() {
        guard let upstream, !pending.isEmpty else { return }
        for part in pending {
            upstream.send(part)
            if case .end = part { requestSent = true }
        }
        pending.removeAll()
        pendingBytes = 0
        upstream.flush()
    }

    /// The original lost body bytes on the way (they were dropped once its answer was
    /// decided): an incomplete copy is not sent on as if it were whole.
    func cancel() {
        giveUp()
    }

    private func giveUp() {
        guard !done else { return }
        done = true
        timeoutTask?.cancel()
        if let waiterID { pool.cancelLease(waiterID) }
        if let upstream {
            self.upstream = nil
            upstream.release(reusable: false)
        }
        pending.removeAll()
        finished(responseStatus)
    }

    // MARK: UpstreamResponseDelegate: the answer is read and dropped.

    var downstreamIsWritable: Bool { true }
    func upstreamResponseHead(_ head: ResponseHead) { responseStatus = head.status }
    func upstreamResponseBody(_ buffer: ByteBuffer) {}
    func upstreamReadComplete() {}

    func upstreamResponseEnd(_ trailers: HTTPFieldList?) {
        guard !done, let upstream else { return }
        // An answer before the whole request went out leaves the connection out of step.
        let reusable = requestSent
        done = true
        timeoutTask?.cancel()
        self.upstream = nil
        upstream.release(reusable: reusable)
        finished(responseStatus)
    }

    func upstreamWritabilityChanged(isWritable: Bool) {
        if isWritable { flushPending() }
    }

    func upstreamClosed() {
        upstream = nil
        giveUp()
    }

    func upstreamRefused() {
        upstreamClosed()
    }
}
