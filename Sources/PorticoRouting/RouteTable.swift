import PorticoConfig

/// The routes of a config, compiled once and then matched per request, first match wins.
///
/// Built when a config is loaded (or reloaded) and shared read-only by every event loop, so
/// everything that can be prepared (regexes, lower-cased hosts, split pickers) is prepared here.
public struct RouteTable: Sendable {
    /// The routes in match order; `routes[i].index == i`.
    public let routes: [CompiledRoute]

    /// Compiles `routes` in the order given; fails on the first regex that does not compile.
    public init(_ routes: [RouteConfig]) throws(RouteTableError) {
        var compiled: [CompiledRoute] = []
        compiled.reserveCapacity(routes.count)
        for (index, route) in routes.enumerated() {
            compiled.append(try CompiledRoute(config: route, index: index))
        }
        self.routes = compiled
    }

    public init(config: GatewayConfig) throws(RouteTableError) {
        try self.init(config.routes)
    }
}
