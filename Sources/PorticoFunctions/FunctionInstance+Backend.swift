import NIOCore
import PorticoProxy

/// An http-mode revision as the proxy's backend: a lease is a worker, which may have to start
/// first (the wait is bounded by the startup timeout, and each try by the request timeout from
/// the moment it has its worker).
extension FunctionInstance: Backend {
    public var leaseMayWait: Bool { true }

    public func lease(id: UInt64, on loop: EventLoop, avoiding previous: BackendLease?, for waiter: any BackendLeaseWaiter) {
        // The scaler picks the worker; a retry's previous one is not avoided (it is free again,
        // or the scaler starts another).
        acquire(id: id, on: loop) { result in
            waiter.backendLeased(result.map { worker in
                BackendLease(endpoint: worker.endpoint, ticket: worker,
                             tryTimeout: worker.instance.manifest.requestTimeout.nanosecondsAmount,
                             protocol: worker.instance.manifest.protocol, coldStart: worker.coldStartPhases,
                             firstConnection: worker.firstConnection)
            })
        }
    }

    public func cancelLease(id: UInt64) {
        cancel(id: id)
    }

    public func record(_ lease: BackendLease, status: Int?) {
        guard let worker = lease.ticket as? WorkerLease else { return }
        if status != nil, let handedOver = worker.handedOver {
            // A cold request's first answer from the worker it waited for.
            worker.metrics?.firstResponse.recordNanoseconds(
                Int64(NIODeadline.now().uptimeNanoseconds &- handedOver.uptimeNanoseconds))
        }
        guard worker.instance.manifest.outlierDetection != nil else { return }
        worker.instance.recordOutcome(worker, status: status)
    }

    public func release(_ lease: BackendLease) {
        guard let worker = lease.ticket as? WorkerLease else { return }
        release(worker)
    }

    /// The worker refused the connection: it gets no more requests (it is killed and
    /// replaced), and the request asks again for another.
    public func replaceRefusedEndpoint(_ lease: BackendLease) -> Bool {
        guard let worker = lease.ticket as? WorkerLease else { return false }
        workerUnreachable(worker)
        return true
    }

    /// The revision that gave the last worker (after a redeploy, the one that took the
    /// request over), or this one.
    public func backendForNextTry(after previous: BackendLease?) -> (any Backend)? {
        (previous?.ticket as? WorkerLease)?.instance ?? self
    }
}
