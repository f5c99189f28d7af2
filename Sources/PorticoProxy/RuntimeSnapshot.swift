import NIOCore
import PorticoConfig
import PorticoRouting

/// A loaded config compiled for serving: the route table built, services indexed.
///
/// Immutable, so a reload swaps one reference per event loop and a request that already
/// started keeps the snapshot it began with.
public final class RuntimeSnapshot: Sendable {
    public let config: GatewayConfig
    public let routeTable: RouteTable
    /// Bumped by every successful reload; shown by the admin API.
    public let generation: Int
    let servicesByName: [String: ServiceConfig]
    let maxRequestHeaders: Int
    let maxRequestBody: Int

    public init(config: GatewayConfig, generation: Int) throws {
        self.config = config
        self.routeTable = try RouteTable(config: config)
        self.generation = generation
        self.servicesByName = Dictionary(config.services.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        self.maxRequestHeaders = config.limits.maxRequestHeaders
        self.maxRequestBody = config.limits.maxRequestBody
    }
}

extension ConfigDuration {
    var timeAmount: TimeAmount { .nanoseconds(nanoseconds) }
}
