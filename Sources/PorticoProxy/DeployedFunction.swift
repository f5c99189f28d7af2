import NIOCore
import PorticoConfig

/// A deployed function as the gateway serves it: the serving revision of one function folder.
/// PorticoFunctions makes them (`FunctionBackend`); the gateway routes to them, and the admin
/// API shows them.
public protocol DeployedFunction: Sendable {
    /// Its manifest: the routes it declares, its limits.
    var manifest: FunctionManifest { get }
    var revision: String { get }
    /// How its requests are answered.
    var serving: FunctionServing { get }
    /// What the admin API shows of it.
    func status() -> EventLoopFuture<FunctionStatus>
}

/// How a function's requests are answered.
public enum FunctionServing: Sendable {
    /// Proxied to endpoints it leases (http mode: its workers).
    case backend(any Backend & Sendable)
    /// Answered whole inside the gateway (exec mode: one process per request).
    case responder(any LocalResponder)
}
