import NIOCore
import PorticoConfig

/// One try's hold on an endpoint of a backend, from `Backend.lease` until `Backend.release`.
///
/// A value, kept in the exchange: a service's lease allocates nothing.
public struct BackendLease {
    /// Where the try connects.
    public let endpoint: HostPort
    /// The backend's own number for what it handed out (a service: the endpoint's index).
    public let slot: Int
    /// The backend's own object for what it handed out (a function: its worker lease; a
    /// service: its outlier detection and health checks), nil when it needs none.
    public let ticket: AnyObject?
    /// What the endpoint speaks, when the backend leases without a pool of its choosing (a
    /// function worker: `protocol` in its `function.yaml`).
    public let `protocol`: UpstreamProtocol
    /// Set when the backend bounds each try itself, counted from the lease (a function's
    /// request timeout); nil: the route's timeout bounds the request.
    public let tryTimeout: TimeAmount?
    /// The endpoint's connections on the request's loop, when the backend picked them (a
    /// service); nil: the loop's pool for `endpoint`, made on first use.
    let pool: (any UpstreamSource)?
    /// Set when the endpoint had to start for this request (a function's cold start).
    public var coldStart: ColdStartPhases?
    /// A socket already connected to `endpoint` (an HTTP/1.1 one), for this try's connection
    /// instead of a connect: a function worker's first, which its supervisor opened to find it
    /// ready. The proxy owns it from `backendLeased` on, and closes it if it does not use it.
    public var firstConnection: Int32?

    public init(endpoint: HostPort, slot: Int = 0, ticket: AnyObject? = nil, tryTimeout: TimeAmount? = nil,
                protocol upstreamProtocol: UpstreamProtocol = .http1, coldStart: ColdStartPhases? = nil,
                firstConnection: Int32? = nil) {
        self.init(endpoint: endpoint, slot: slot, ticket: ticket, tryTimeout: tryTimeout, pool: nil, protocol: upstreamProtocol)
        self.coldStart = coldStart
        self.firstConnection = firstConnection
    }

    init(endpoint: HostPort, slot: Int, ticket: AnyObject?, tryTimeout: TimeAmount?, pool: (any UpstreamSource)?,
         protocol upstreamProtocol: UpstreamProtocol = .http1) {
        self.protocol = upstreamProtocol
        self.endpoint = endpoint
        self.slot = slot
        self.ticket = ticket
        self.tryTimeout = tryTimeout
        self.pool = pool
    }
}
