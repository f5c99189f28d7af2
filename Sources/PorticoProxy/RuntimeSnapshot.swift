import NIOCore
import PorticoConfig
import PorticoFunctions
import PorticoRouting

/// A loaded config compiled for serving: the route table built, services indexed.
///
/// Immutable, so a reload swaps one reference per event loop and a request that already
/// started keeps the snapshot it began with.
public final class RuntimeSnapshot: Sendable {
    public let config: GatewayConfig
    /// The deployed functions, by name (the serving revision of each).
    public let functions: [String: FunctionBackend]
    /// The gateway's routes, then the routes functions declare, in match order.
    public let routes: [RouteConfig]
    public let routeTable: RouteTable
    /// Bumped by every successful reload or function change; shown by the admin API.
    public let generation: Int
    let servicesByName: [String: ServiceConfig]
    let maxRequestHeaders: Int
    let maxRequestBody: Int

    public init(config: GatewayConfig, functions: [String: FunctionBackend] = [:], generation: Int) throws {
        self.config = config
        self.functions = functions
        self.routes = config.routes + functions.values.map(\.manifest).routeConfigs(after: config.routes.count)
        self.routeTable = try RouteTable(routes)
        self.generation = generation
        self.servicesByName = Dictionary(config.services.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        self.maxRequestHeaders = config.limits.maxRequestHeaders
        self.maxRequestBody = config.limits.maxRequestBody
    }
}

extension ConfigDuration {
    var timeAmount: TimeAmount { .nanoseconds(nanoseconds) }
}
