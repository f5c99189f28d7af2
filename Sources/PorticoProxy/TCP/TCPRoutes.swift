import PorticoConfig
import PorticoRouting

/// A `tcp:` listener's settings as a config snapshot serves them: which service a new
/// connection goes to, by the server name its ClientHello asks for when the listener routes
/// by SNI. Looked up by listener name when a connection arrives, so a reload's changes reach
/// the next connection.
struct TCPRoutes: Sendable {
    let config: TCPListenerConfig
    private let table: ServerNameTable<String>?
    private let defaultService: String?

    init(_ config: TCPListenerConfig) {
        self.config = config
        switch config.routing {
        case .service(let service):
            table = nil
            defaultService = service
        case .serverName(let routes, let fallback):
            table = ServerNameTable(routes.map { ($0.names, $0.service) })
            defaultService = fallback
        }
    }

    /// Whether connections wait for a ClientHello before they are routed.
    var routesByServerName: Bool { table != nil }

    /// The service for a connection whose ClientHello named `serverName` (nil: none given);
    /// for a listener with one `service`, always that one.
    func service(forServerName serverName: String?) -> String? {
        guard let table else { return defaultService }
        return serverName.flatMap { table.lookup($0) } ?? defaultService
    }

    static func compile(_ config: GatewayConfig) -> [String: TCPRoutes] {
        Dictionary(config.tcp.map { ($0.name, TCPRoutes($0)) }, uniquingKeysWith: { first, _ in first })
    }
}
