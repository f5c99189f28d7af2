/// How the route table treated one request, route by route, for `portico explain`: the
/// walk `RouteTable.match` makes, with the reason each route before the winner was passed over.
public struct RouteTrace: Sendable {
    /// One route's verdict on the request.
    public struct Trial: Sendable {
        public enum Outcome: Sendable, Equatable {
            /// Tried before the winner (or when none won) and failed this condition.
            case failed(RouteMismatch)
            /// The route the request goes to.
            case matched
            /// After the winner, so never tried; `wouldMatch` says whether it would have taken
            /// the request had it been first.
            case notReached(wouldMatch: Bool)
        }

        public let route: CompiledRoute
        public let outcome: Outcome
        /// The earlier route that takes every request this one would (`shadowedRoutes()`):
        /// this route never matches anything.
        public let shadowedBy: CompiledRoute?
    }

    /// Every route in match order.
    public let trials: [Trial]
    /// The first route whose every condition holds; nil: no route, 404.
    public let matched: MatchedRoute?
}
