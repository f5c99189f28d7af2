import Yams

extension ConfigReader {
    static let tcpListenerKeys = ["name", "address", "service", "sni", "default", "idleTimeout", "helloTimeout", "maxConnections"]

    /// `tcp:` — listeners that proxy bytes to a service, or route TLS by its server name
    /// without terminating it. Names and addresses must not clash with `listeners:` or `admin:`.
    func tcpListeners(_ node: Node, services: [ServiceConfig], listeners: [ListenerConfig],
                      admin: AdminConfig?) -> [TCPListenerConfig] {
        guard let items = sequence(node, key: "tcp", of: "tcp listeners") else { return [] }
        let serviceNames = services.map(\.name)
        var namesSeen: [String: String] = [:]
        var addressesSeen: [HostPort: String] = [:]
        for listener in listeners {
            namesSeen[listener.name] = namesSeen[listener.name] ?? "listener '\(listener.name)'"
            if listener.address.port != 0 { addressesSeen[listener.address] = addressesSeen[listener.address] ?? "listener '\(listener.name)'" }
        }
        if let admin, admin.address.port != 0 { addressesSeen[admin.address] = addressesSeen[admin.address] ?? "admin" }

        var result: [TCPListenerConfig] = []
        for (index, item) in items.enumerated() {
            let path = Self.path("tcp", index: index)
            guard let fields = fields(item, key: path, allowed: Self.tcpListenerKeys) else { continue }

            var name = "tcp-\(index)"
            if let nameNode = fields["name"], let given = string(nameNode, key: fields.path("name")) {
                name = given
                if let first = namesSeen[given] {
                    error("listener name '\(given)' is already used by \(first)", at: nameNode, key: fields.path("name"))
                }
            }
            namesSeen[name] = namesSeen[name] ?? "tcp listener '\(name)'"

            let address = listenerAddress(fields, owner: "tcp listener '\(name)'", seen: &addressesSeen)

            let routing = tcpRouting(fields, serviceNames: serviceNames)
            var listener = TCPListenerConfig(name: name, address: address ?? HostPort(host: "", port: 0),
                                             routing: routing ?? .service(""), location: location(of: item))
            if let value = fields["idleTimeout"].flatMap({ duration($0, key: fields.path("idleTimeout")) }) {
                listener.idleTimeout = value
            }
            if let node = fields["helloTimeout"] {
                if fields["sni"] == nil {
                    error("'helloTimeout' bounds the wait for a TLS ClientHello; it needs 'sni'", at: fields.keyNode("helloTimeout"),
                          key: fields.path("helloTimeout"))
                } else if let value = duration(node, key: fields.path("helloTimeout")) {
                    listener.helloTimeout = value
                }
            }
            if let node = fields["maxConnections"] {
                listener.maxConnections = int(node, key: fields.path("maxConnections"), in: 1...Int(Int32.max),
                                              rangeMessage: "must be at least 1")
            }
            if address != nil, routing != nil { result.append(listener) }
        }
        return result
    }

    /// `service:`, or `sni:` with an optional `default:`; exactly one of the two ways.
    private func tcpRouting(_ fields: Fields, serviceNames: [String]) -> TCPListenerConfig.Routing? {
        let serviceNode = fields["service"]
        let sniNode = fields["sni"]
        if let defaultNode = fields["default"], sniNode == nil {
            error("'default' is where connections with an unknown server name go; it needs 'sni'", at: fields.keyNode("default"),
                  key: fields.path("default"))
            _ = serviceReference(defaultNode, key: fields.path("default"), serviceNames: serviceNames)
        }
        switch (serviceNode, sniNode) {
        case (let serviceNode?, nil):
            return serviceReference(serviceNode, key: fields.path("service"), serviceNames: serviceNames).map { .service($0) }
        case (nil, let sniNode?):
            let routes = serverNameRoutes(sniNode, key: fields.path("sni"), serviceNames: serviceNames)
            var defaultService: String?
            if let defaultNode = fields["default"] {
                defaultService = serviceReference(defaultNode, key: fields.path("default"), serviceNames: serviceNames)
                if defaultService == nil { return nil }
            }
            return routes.map { .serverName(routes: $0, defaultService: defaultService) }
        case (_?, _?):
            error("a tcp listener sends every connection to 'service' or routes by 'sni', not both", at: fields.keyNode("sni"),
                  key: fields.path("sni"))
            return nil
        case (nil, nil):
            requireKey("service", in: fields,
                       message: "a tcp listener needs 'service' (every connection goes there) or 'sni' (routes by the TLS server name)")
            return nil
        }
    }

    /// `sni: [{ names: [...], service: NAME }, ...]`: each name routed once in the listener.
    private func serverNameRoutes(_ node: Node, key: String, serviceNames: [String]) -> [ServerNameRoute]? {
        guard let items = sequence(node, key: key, of: "{ names, service } entries") else { return nil }
        guard !items.isEmpty else {
            error("needs at least one { names, service } entry", at: node, key: key)
            return nil
        }
        let errorsBefore = diagnostics.count
        var seen: [String: String] = [:]
        var routes: [ServerNameRoute] = []
        for (index, item) in items.enumerated() {
            let path = Self.path(key, index: index)
            guard let fields = fields(item, key: path, allowed: ["names", "service"]) else { continue }
            let names = fields["names"].flatMap { serverNames($0, key: fields.path("names"), seen: &seen, owner: path) }
            if fields["names"] == nil { requireKey("names", in: fields) }
            var service: String?
            if let serviceNode = fields["service"] {
                service = serviceReference(serviceNode, key: fields.path("service"), serviceNames: serviceNames)
            } else {
                requireKey("service", in: fields)
            }
            if let names, let service { routes.append(ServerNameRoute(names: names, service: service)) }
        }
        return diagnostics.count == errorsBefore ? routes : nil
    }

    /// A non-empty list of server names and one-label wildcards, none already in `seen`.
    func serverNames(_ node: Node, key: String, seen: inout [String: String], owner: String) -> [String]? {
        guard let items = sequence(node, key: key, of: "server names such as db.example.com or *.example.com") else { return nil }
        guard !items.isEmpty else {
            error("needs at least one server name", at: node, key: key)
            return nil
        }
        var names: [String] = []
        for (index, item) in items.enumerated() {
            let itemKey = Self.path(key, index: index)
            guard let raw = string(item, key: itemKey, what: "a server name") else { continue }
            switch ServerNamePattern.canonical(raw) {
            case .failure(let problem):
                error(problem.message, at: item, key: itemKey)
            case .success(let name):
                if let first = seen[name] {
                    error("server name '\(name)' is already listed in \(first)", at: item, key: itemKey)
                } else {
                    seen[name] = owner
                    names.append(name)
                }
            }
        }
        return names
    }
}
