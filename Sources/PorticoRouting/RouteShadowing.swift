/// A route that can never match because an earlier route matches every request it would.
public struct RouteShadowing: Sendable, Equatable, CustomStringConvertible {
    /// Index of the route that never matches.
    public var shadowed: Int
    /// Index of the first earlier route that takes all its requests.
    public var by: Int

    public init(shadowed: Int, by: Int) {
        self.shadowed = shadowed
        self.by = by
    }

    public var description: String { "route \(shadowed) is shadowed by route \(by)" }
}
