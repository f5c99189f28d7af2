import Logging
import NIOCore
import PorticoConfig
import Prometheus

/// Where the gateway's functions come from: PorticoFunctions' `FunctionRegistry` (a folder of
/// function folders), which the `portico` command wires in. The gateway drives it through its
/// services and hears of its changes through `FunctionSourceHooks`.
public protocol FunctionSource: AnyObject, Sendable {
    /// Deploys what is there now; returns when done (before the listeners open).
    func deployNow() async
    /// Keeps the deployed functions in step with their source from now on.
    func startWatching()
    /// Drains every function and stops what it runs.
    func shutdown() async
}

/// What the gateway hands a function source as it makes it.
public struct FunctionSourceHooks: Sendable {
    /// The event loops that serve requests (a function's home loop is one of them).
    public let eventLoops: [EventLoop]
    /// Where functions register their metrics (the gateway's `/metrics`).
    public let metricsRegistry: PrometheusCollectorRegistry
    public let logger: Logger
    /// Tells the gateway the deployed functions by name, and the ones that failed with why:
    /// every event loop gets routes for them.
    public let publish: @Sendable (_ functions: [String: any DeployedFunction], _ failures: [String: String]) -> Void
    /// Tells the gateway that an endpoint a function leased is gone for good (a worker's
    /// port), so every event loop drops its pool to it.
    public let endpointGone: @Sendable (HostPort) -> Void
}
