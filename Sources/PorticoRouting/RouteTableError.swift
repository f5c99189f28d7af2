import PorticoConfig

/// A route that cannot be compiled into a `RouteTable`.
public enum RouteTableError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The route's `regex` path pattern is not a valid Swift `Regex`.
    case invalidRegex(route: String, pattern: String, location: SourceLocation, reason: String)

    public var description: String {
        switch self {
        case let .invalidRegex(route, pattern, location, reason):
            return "\(location.file):\(location.line):\(location.column): route '\(route)': invalid regex '\(pattern)': \(reason)"
        }
    }
}
