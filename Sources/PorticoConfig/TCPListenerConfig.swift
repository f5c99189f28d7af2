/// A `tcp:` listener: a port whose connections are proxied byte for byte to a service, either
/// always the same one or, for TLS that Portico does not terminate, the one the ClientHello's
/// server name (SNI) picks.
public struct TCPListenerConfig: Sendable, Equatable {
    /// Where a connection goes.
    public enum Routing: Sendable, Equatable {
        /// Every connection to this service.
        case service(String)
        /// By the ClientHello's server name: the first route naming it (exact names before
        /// wildcards), else `defaultService`, else the connection is closed.
        case serverName(routes: [ServerNameRoute], defaultService: String?)
    }

    public var name: String
    public var address: HostPort
    public var routing: Routing
    /// No byte in either direction for this long closes both sides (Envoy's tcp_proxy
    /// `idle_timeout`, also one hour by default).
    public var idleTimeout: ConfigDuration
    /// SNI routing only: a client that has not sent its whole ClientHello this long after it
    /// connected is closed.
    public var helloTimeout: ConfigDuration
    /// Open connections on this listener, over every event loop; one more is closed at once.
    /// nil: no limit.
    public var maxConnections: Int?
    public var location: UncomparedLocation

    public static let defaultIdleTimeout = ConfigDuration.seconds(3600)
    public static let defaultHelloTimeout = ConfigDuration.seconds(10)

    public init(name: String, address: HostPort, routing: Routing, idleTimeout: ConfigDuration = Self.defaultIdleTimeout,
                helloTimeout: ConfigDuration = Self.defaultHelloTimeout, maxConnections: Int? = nil,
                location: SourceLocation? = nil) {
        self.name = name
        self.address = address
        self.routing = routing
        self.idleTimeout = idleTimeout
        self.helloTimeout = helloTimeout
        self.maxConnections = maxConnections
        self.location = UncomparedLocation(location)
    }

    /// Every service this listener may send a connection to.
    public var services: [String] {
        switch routing {
        case .service(let name):
            return [name]
        case .serverName(let routes, let defaultService):
            return routes.map(\.service) + (defaultService.map { [$0] } ?? [])
        }
    }
}

/// One `sni:` entry: server names (exact, or `*.` and a domain for any one label in front of
/// it) and the service their connections go to.
public struct ServerNameRoute: Sendable, Equatable {
    /// Lower-cased, without a trailing dot.
    public var names: [String]
    public var service: String

    public init(names: [String], service: String) {
        self.names = names
        self.service = service
    }
}
