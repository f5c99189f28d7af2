import NIOCore
import PorticoConfig
import PorticoProxy

/// A worker assigned to one request; the `ticket` of the proxy's `BackendLease`.
final class WorkerLease: Sendable {
    /// The revision that assigned the worker, and the one the lease goes back to: after a
    /// redeploy that is not the revision the request first asked.
    let instance: FunctionInstance
    let requestID: UInt64
    let worker: UInt64
    /// Where the worker listens (127.0.0.1:PORT).
    let endpoint: HostPort
    /// True when the request had to wait for a worker to start.
    var coldStart: Bool { coldStartPhases != nil }
    /// How that start went, when it had to wait for one.
    let coldStartPhases: ColdStartPhases?
    /// When the worker was handed over (set only for a cold start: its first response is timed).
    let handedOver: NIODeadline?
    /// Where a cold start's first response is recorded (from the request's loop).
    let metrics: FunctionRevisionMetrics?
    /// A connection to the worker that is already open (the one its supervisor found it ready
    /// with), for the request's first try; owned by whoever takes the lease.
    let firstConnection: Int32?

    init(instance: FunctionInstance, requestID: UInt64, worker: UInt64, endpoint: HostPort,
         coldStartPhases: ColdStartPhases? = nil, metrics: FunctionRevisionMetrics? = nil, firstConnection: Int32? = nil) {
        self.instance = instance
        self.firstConnection = firstConnection
        self.metrics = metrics
        self.requestID = requestID
        self.worker = worker
        self.endpoint = endpoint
        self.coldStartPhases = coldStartPhases
        self.handedOver = coldStartPhases == nil ? nil : .now()
    }
}
