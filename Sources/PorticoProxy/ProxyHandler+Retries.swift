import NIOCore
import PorticoHTTP1
import PorticoConfig
import PorticoCore
import PorticoRouting

/// Retries, per-try and route timeouts, and how an exchange settles.
extension ProxyHandler {
    // MARK: Retries

    /// Starts another try when the route's retries allow one after `outcome`: conditions,
    /// count, a body that can be sent again, and the backend's retry budget. The try that
    /// failed gives back its connection (not for reuse: its answer was not read) and its slot;
    /// the next one goes to another endpoint where there is one, after a jittered backoff.
    /// The route's overall timeout keeps running across tries.
    func retryScheduled(_ exchange: Exchange, after outcome: RetryRules.Outcome) -> Bool {
        guard let retry = exchange.retry, !exchange.responseStarted, retry.replayable,
              retry.retriesDone < retry.compiled.rules.retries, retry.compiled.rules.matches(outcome),
              downstream != nil, case .proxying(let current) = state, current === exchange else { return false }
        let now = Int64(truncatingIfNeeded: NIODeadline.now().uptimeNanoseconds)
        guard loop.takeRetryFromBudget(retry.budgetKey, now: now) else { return false }
        retry.retriesDone += 1
        loop.metrics.recordRetry(route: exchange.routeName)
        retry.perTryTask?.cancel()
        retry.perTryTask = nil

        if let waiterID = exchange.waiterID {
            exchange.pool?.cancelLease(waiterID)
            exchange.waiterID = nil
            leftBreakerQueue(exchange)
        }
        if let upstream = exchange.upstream {
            exchange.upstream = nil
            upstream.release(reusable: false)
        }
        let previous = exchange.lease
        if let lease = exchange.lease {
            exchange.lease = nil
            exchange.destination.release(lease)
            // A try bounded from its lease (a function's requestTimeout) gets its time afresh
            // with the next lease: the backoff and a cold start are not counted.
            if lease.tryTimeout != nil { exchange.cancelTimeout() }
        }
        exchange.pool = nil
        // The next try starts from everything the client has sent so far; what is still to
        // come is buffered behind it until that try has a connection.
        exchange.bufferedBody = retry.replay.map { [$0] } ?? []
        exchange.bufferedEnd = exchange.requestComplete

        let backoff = retry.compiled.rules.backoff(retry: retry.retriesDone, unit: loop.random.unitDraw())
        retry.backoffTask = loop.eventLoop.assumeIsolated().scheduleTask(in: .nanoseconds(backoff)) {
            guard case .proxying(let current) = self.state, current === exchange, self.downstream != nil
            else { return }
            retry.backoffTask = nil
            self.startRetry(exchange, retry: retry, avoiding: previous)
        }
        return true
    }

    func startRetry(_ exchange: Exchange, retry: RetryState, avoiding previous: BackendLease?) {
        // A service as this loop serves it now: a reload during the backoff may have changed
        // its endpoints, and a pick from the old list would point past the new one. A function
        // gives another worker if one is free, or a new one (its scaler decides).
        guard let next = exchange.destination.backendForNextTry(after: previous) else {
            releaseBackendSlot(exchange)
            exchange.cancelTimeout()
            retry.cancelTimers()
            writeLocalReply(.noBackend, head: exchange.requestHead, close: false, record: exchange.record(),
                            requestComplete: exchange.requestComplete)
            return
        }
        exchange.destination = next
        // Another endpoint is preferred (least_request and random can pick the same one).
        leaseBackend(exchange, avoiding: previous)
    }

    /// The per-try timeout runs from the moment the try's request has been sent whole (as in
    /// Envoy), so a slow upload is not cut short by it.
    func startPerTryTimer(_ exchange: Exchange) {
        guard let retry = exchange.retry, let perTry = retry.compiled.perTryTimeout, retry.perTryTask == nil,
              !exchange.responseStarted else { return }
        retry.perTryTask = loop.eventLoop.assumeIsolated().scheduleTask(in: perTry) {
            self.perTryTimedOut(exchange)
        }
    }

    func perTryTimedOut(_ exchange: Exchange) {
        guard case .proxying(let current) = state, current === exchange, !exchange.responseStarted, downstream != nil else { return }
        exchange.retry?.perTryTask = nil
        if exchange.upstream != nil { recordOutcome(exchange, status: nil) }
        if retryScheduled(exchange, after: .perTryTimeout) { return }
        abandonUpstream(exchange)
        releaseBackendSlot(exchange)
        writeLocalReply(.upstreamTimeout, head: exchange.requestHead, close: !exchange.requestComplete,
                        record: exchange.record(), requestComplete: exchange.requestComplete)
    }

    func routeTimedOut(_ exchange: Exchange) {
        guard case .proxying(let current) = state, current === exchange, !exchange.responseStarted, downstream != nil else { return }
        if exchange.upstream != nil { recordOutcome(exchange, status: nil) }
        abandonUpstream(exchange)
        releaseBackendSlot(exchange)
        // A client still sending its body is not made to finish first: it hears now, and the
        // connection closes behind the answer.
        writeLocalReply(.upstreamTimeout, head: exchange.requestHead, close: !exchange.requestComplete,
                        record: exchange.record(), requestComplete: exchange.requestComplete)
    }

    /// Both directions are done: the connection goes back to the pool and the request is logged.
    func completeExchange(_ exchange: Exchange) {
        if let upstream = exchange.upstream {
            exchange.upstream = nil
            upstream.release(reusable: exchange.destination.mayReuse(connectionThatServed: upstream.requestsServed))
        }
        finish(exchange)
        state = .idle
    }

    /// Gives up the exchange's upstream connection without reusing it.
    func abandonUpstream(_ exchange: Exchange) {
        exchange.cancelTimeout()
        exchange.retry?.cancelTimers()
        if let waiterID = exchange.waiterID {
            exchange.pool?.cancelLease(waiterID)
            exchange.waiterID = nil
            leftBreakerQueue(exchange)
        }
        if let leaseID = exchange.leaseID {
            exchange.leaseID = nil
            exchange.destination.cancelLease(id: leaseID)
        }
        if let upstream = exchange.upstream {
            exchange.upstream = nil
            upstream.release(reusable: false)
        }
    }

    func finish(_ exchange: Exchange) {
        guard !exchange.finished else { return }
        exchange.finished = true
        releaseBackendSlot(exchange)
        record(exchange.record(), method: exchange.requestHead.method, uri: exchange.requestHead.target,
               status: exchange.status, bytesIn: exchange.bytesIn, bytesOut: exchange.bytesOut,
               upstream: exchange.pool?.endpoint)
    }

    /// Gives back what the request held of its backend (the load balancer's in-flight count,
    /// a function worker's concurrency slot). Once.
    func releaseBackendSlot(_ exchange: Exchange) {
        guard !exchange.slotReleased else { return }
        exchange.slotReleased = true
        if let lease = exchange.lease { exchange.destination.release(lease) }
    }
}
