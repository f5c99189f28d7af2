import PorticoConfig

/// The route a request matched: one pointer, cheap to carry through the pipeline.
public struct MatchedRoute: Sendable, Equatable {
    public let route: CompiledRoute

    public init(route: CompiledRoute) {
        self.route = route
    }

    public var config: RouteConfig { route.config }
    /// The route's position in match order.
    public var index: Int { route.index }
    /// The configured prefix, for prefix routes; the request path starts with it.
    public var matchedPrefix: String? { route.matchedPrefix }

    public static func == (lhs: MatchedRoute, rhs: MatchedRoute) -> Bool {
        lhs.route === rhs.route
    }
}
