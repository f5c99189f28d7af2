import NIOCore
import PorticoCore

/// Retries, and the per-try and route timeouts: the machine decides, this asks the retry
/// budget, keeps the clocks, and starts the next try.
extension ProxyHandler {
    // MARK: Retries

    /// The machine asks for a retry: the backend's retry budget has the last word (a refused
    /// retry turns back into the failed try's own answer). Every event that can fail a try
    /// passes its action through here.
    func budgeted(_ action: ExchangeStateMachine.Action, _ exchange: Exchange) -> ExchangeStateMachine.Action {
        guard case .scheduleRetry = action else { return action }
        let now = Int64(truncatingIfNeeded: NIODeadline.now().uptimeNanoseconds)
        guard let retry = exchange.retry, loop.takeRetryFromBudget(retry.budgetKey, now: now) else {
            return exchange.machine.retryRefusedByBudget()
        }
        loop.metrics.recordRetry(route: exchange.routeName)
        return action
    }

    /// The try that failed gives back its connection (not for reuse: its answer was not read)
    /// and its endpoint; the next one goes to another endpoint where there is one, after a
    /// jittered backoff. The route's overall timeout keeps running across tries.
    func scheduleRetry(_ exchange: Exchange, retry number: Int, abandonUpstream: Bool) {
        guard let retry = exchange.retry else { return }
        retry.cancelPerTryTimer()
        trace?.endCurrentTry(at: .now())
        if let waiterID = exchange.waiterID {
            exchange.pool?.cancelLease(waiterID)
            exchange.waiterID = nil
            leftBreakerQueue(exchange)
        }
        if abandonUpstream, let upstream = exchange.upstream {
            exchange.upstream = nil
            upstream.release(reusable: false)
        }
        exchange.previousLease = exchange.lease
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

        let backoff = retry.compiled.rules.backoff(retry: number, unit: loop.random.unitDraw())
        retry.backoffTask = loop.eventLoop.assumeIsolated().scheduleTask(in: .nanoseconds(backoff)) {
            retry.backoffTask = nil
            guard self.downstream != nil else { return }
            self.perform(exchange.machine.backoffElapsed(), exchange)
        }
    }

    /// The backoff is over: the next try's endpoint.
    func startRetry(_ exchange: Exchange) {
        // A service as this loop serves it now: a reload during the backoff may have changed
        // its endpoints, and a pick from the old list would point past the new one. A function
        // gives another worker if one is free, or a new one (its scaler decides).
        guard let next = exchange.destination.backendForNextTry(after: exchange.previousLease) else {
            perform(exchange.machine.leaseFailed(.unavailable(.noBackend)), exchange)
            return
        }
        exchange.destination = next
        // Another endpoint is preferred (least_request and random can pick the same one).
        leaseBackend(exchange, avoiding: exchange.previousLease)
    }

    // MARK: Timeouts

    /// The per-try timeout runs from the moment the try's request has been sent whole (as in
    /// Envoy), so a slow upload is not cut short by it.
    func startPerTryTimer(_ exchange: Exchange) {
        guard let retry = exchange.retry, let perTry = retry.compiled.perTryTimeout, retry.perTryTask == nil else { return }
        retry.perTryTask = loop.eventLoop.assumeIsolated().scheduleTask(in: perTry) {
            self.perTryTimedOut(exchange)
        }
    }

    func perTryTimedOut(_ exchange: Exchange) {
        exchange.retry?.perTryTask = nil
        guard downstream != nil else { return }
        trace?.tryFailed("timeout")
        if exchange.machine.isAwaitingResponse { recordOutcome(exchange, status: nil) }
        perform(budgeted(exchange.machine.perTryTimedOut(), exchange), exchange)
    }

    func routeTimedOut(_ exchange: Exchange) {
        guard downstream != nil else { return }
        trace?.tryFailed("timeout")
        if exchange.machine.isAwaitingResponse { recordOutcome(exchange, status: nil) }
        perform(exchange.machine.routeTimedOut(), exchange)
    }
}
