import NIOCore
import PorticoHTTP1
import PorticoConfig
import PorticoCore

#if canImport(Glibc)
import Glibc
#endif

/// The backend step of an exchange: an endpoint leased from the route's `Backend` for each try,
/// then a connection to it from this loop's pool. Nothing here knows which kind of backend it is.
extension ProxyHandler {
    /// Starts the first try: a connection to the endpoint leased as the request started, or a
    /// lease first, which may wait (for a function worker).
    func connectBackend(_ exchange: Exchange) {
        exchange.connecting = true
        if let pool = exchange.pool {
            startTimeout(exchange, exchange.routeTimeout)
            leaseConnection(exchange, from: pool)
        } else {
            leaseBackend(exchange)
        }
    }

    func leaseConnection(_ exchange: Exchange, from pool: any UpstreamSource) {
        if trace != nil { _ = trace!.tryStarted(random: &loop.random, endpoint: pool.endpoint) }
        exchange.leaseSettled = false
        let id = pool.lease(for: exchange)
        guard !exchange.leaseSettled else { return }
        exchange.waiterID = id
        // No connection to hand out at once: the request waits, if the backend lets one more
        // wait (a service's circuit breaker); if not, 503 now rather than a longer queue.
        if exchange.destination.connectionWaitBegins() {
            exchange.waitingForConnection = true
        } else {
            pool.cancelLease(id)
            exchange.waiterID = nil
            exchange.leaseSettled = true
            leaseCompleted(exchange, result: .failure(.overloaded))
        }
    }

    /// The request stopped waiting for a connection (it got one, or gave up).
    func leftBreakerQueue(_ exchange: Exchange) {
        guard exchange.waitingForConnection else { return }
        exchange.waitingForConnection = false
        exchange.destination.connectionWaitEnds()
    }

    /// What a try came to, for the backend's outlier detection: a status, or nil when the
    /// endpoint gave no answer (connect failure, reset, timeout).
    func recordOutcome(_ exchange: Exchange, status: Int?) {
        guard let lease = exchange.lease else { return }
        exchange.destination.record(lease, status: status)
    }

    /// Asks the exchange's backend for an endpoint for the next try. A function's request
    /// waits here while a worker starts (the activator's job); that wait is bounded by the
    /// function's startup timeout, not by the request timeout, which starts once a worker is
    /// assigned.
    func leaseBackend(_ exchange: Exchange, avoiding previous: BackendLease? = nil) {
        let id = loop.nextLeaseID()
        exchange.leaseID = id
        exchange.destination.lease(id: id, on: loop.eventLoop, avoiding: previous, for: exchange)
    }

    func startTimeout(_ exchange: Exchange, _ timeout: TimeAmount) {
        loop.timeouts.watch(exchange, until: loop.eventLoop.now + timeout)
    }

    /// The backend leased an endpoint (or could not).
    func backendLeased(_ exchange: Exchange, result: Result<BackendLease, BackendUnavailable>) {
        exchange.leaseID = nil
        releaseWaitingBody(exchange)
        guard exchange.machine.isLeasing, downstream != nil else {
            // A request that ended meanwhile gives the endpoint back.
            if case .success(let lease) = result {
                if let connection = lease.firstConnection { _ = Glibc.close(connection) }
                exchange.destination.release(lease)
            }
            return
        }
        switch result {
        case .failure(let reason):
            perform(exchange.machine.leaseFailed(.unavailable(LocalReply(reason))), exchange)
        case .success(let lease):
            exchange.lease = lease
            if let phases = lease.coldStart {
                coldStart = phases
                coldStartLeased = .now()
                trace?.coldStartHandedOver = coldStartLeased
            }
            let pool = lease.pool ?? loop.pool(forLeased: lease.endpoint, protocol: lease.protocol,
                                               owner: exchange.backend.description)
            if let connection = lease.firstConnection {
                if let pool = pool as? UpstreamPool { pool.adopt(connectedSocket: connection) } else { _ = Glibc.close(connection) }
                exchange.lease?.firstConnection = nil  // the pool's now
            }
            exchange.pool = pool
            if let tryTimeout = lease.tryTimeout {
                exchange.cancelTimeout()  // a retry's earlier try had one
                startTimeout(exchange, tryTimeout)
                if let retry = exchange.retry, retry.overallTask == nil {
                    // With retries, the route's timeout bounds all tries (as for a service), counted
                    // from the first try's lease: a cold start is not spent from it either.
                    retry.overallTask = loop.eventLoop.assumeIsolated().scheduleTask(in: exchange.routeTimeout) {
                        self.routeTimedOut(exchange)
                    }
                }
            }
            if exchange.connecting { leaseConnection(exchange, from: pool) }
        }
    }

    /// Body bytes that arrive while the request waits for a worker count against the backend's
    /// bound (a function's `queueBodyLimit`), so a burst of uploads to a cold function cannot
    /// fill the gateway's memory. Over it, the request gets 503 and nothing more is buffered.
    func holdWaitingBody(_ exchange: Exchange, _ bytes: Int) -> Bool {
        guard bytes > 0 else { return true }
        guard exchange.destination.holdWaitingBody(bytes) else {
            perform(exchange.machine.waitingBodyRefused(), exchange)
            return false
        }
        exchange.waitingBodyBytes += bytes
        exchange.waitingBodyHolder = exchange.destination
        return true
    }

    /// Gives back what `holdWaitingBody` held: the request has its lease, or ended.
    func releaseWaitingBody(_ exchange: Exchange) {
        guard let holder = exchange.waitingBodyHolder else { return }
        exchange.waitingBodyHolder = nil
        holder.releaseWaitingBody(exchange.waitingBodyBytes)
        exchange.waitingBodyBytes = 0
    }
}
