extension TCPListenerConfig {
    /// As `gateway.yaml` writes it, defaults filled in (see `GatewayConfig.renderJSON`).
    var jsonObject: [String: Any] {
        var object: [String: Any] = [
            "name": name, "address": address.description, "idleTimeout": idleTimeout.description,
        ]
        if let maxConnections { object["maxConnections"] = maxConnections }
        switch routing {
        case .service(let service):
            object["service"] = service
        case .serverName(let routes, let defaultService):
            object["sni"] = routes.map { ["names": $0.names, "service": $0.service] as [String: Any] }
            object["helloTimeout"] = helloTimeout.description
            if let defaultService { object["default"] = defaultService }
        }
        return object
    }
}
