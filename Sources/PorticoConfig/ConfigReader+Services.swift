import Yams

extension ConfigReader {
    /// `services:` — upstream clusters by name, kept in file order.
    func services(_ node: Node) -> [ServiceConfig] {
        guard let entries = namedEntries(node, key: "services", what: "service") else { return [] }
        var result: [ServiceConfig] = []
        for entry in entries {
            let path = Self.path("services", entry.name)
            let allowed = ["endpoints", "loadBalancer", "connectTimeout", "maxConnectionsPerEndpoint", "retryBudget",
                           "outlierDetection", "circuitBreaker", "healthCheck", "tls", "protocol"]
            guard let fields = fields(entry.value, key: path, allowed: allowed) else { continue }
            var service = ServiceConfig(name: entry.name, endpoints: [])
            service.location = UncomparedLocation(location(of: entry.key))

            if let endpointsNode = fields["endpoints"] {
                let endpointsPath = fields.path("endpoints")
                if let items = sequence(endpointsNode, key: endpointsPath, of: "addresses like 127.0.0.1:9001") {
                    if items.isEmpty {
                        error("a service needs at least one endpoint", at: endpointsNode, key: endpointsPath)
                    }
                    service.endpoints = items.enumerated().compactMap { index, item in
                        hostPort(item, key: Self.path(endpointsPath, index: index))
                    }
                }
            } else {
                requireKey("endpoints", in: fields)
            }
            if let value = fields["loadBalancer"].flatMap({ node in
                choice(node, key: fields.path("loadBalancer"), LoadBalancerKind.allCases.map { ($0.rawValue, $0) })
            }) {
                service.loadBalancer = value
            }
            if let value = fields["connectTimeout"].flatMap({ duration($0, key: fields.path("connectTimeout")) }) {
                service.connectTimeout = value
            }
            if let value = fields["maxConnectionsPerEndpoint"].flatMap({
                int($0, key: fields.path("maxConnectionsPerEndpoint"), in: 1...Int(Int32.max),
                    rangeMessage: "must be at least 1")
            }) {
                service.maxConnectionsPerEndpoint = value
            }
            if let budgetNode = fields["retryBudget"], let budget = retryBudget(budgetNode, key: fields.path("retryBudget")) {
                service.retryBudget = budget
            }
            if let node = fields["outlierDetection"] {
                service.outlierDetection = outlierDetection(node, key: fields.path("outlierDetection"))
            }
            if let node = fields["circuitBreaker"] {
                service.circuitBreaker = circuitBreaker(node, key: fields.path("circuitBreaker"))
            }
            if let node = fields["healthCheck"] {
                service.healthCheck = healthCheck(node, key: fields.path("healthCheck"))
            }
            if let node = fields["tls"] {
                service.tls = upstreamTLS(node, key: fields.path("tls"))
                service.location = UncomparedLocation(location(of: fields.keyNode("tls")))
            }
            if let node = fields["protocol"],
               let value = choice(node, key: fields.path("protocol"), UpstreamProtocol.allCases.map { ($0.rawValue, $0) }) {
                service.protocol = value
                // `h2` and `auto` negotiate by ALPN, which only TLS has.
                if (value == .h2 || value == .auto) && fields["tls"] == nil {
                    error("protocol '\(value.rawValue)' is HTTP/2 over TLS (ALPN) and needs 'tls' on the service; "
                          + "for HTTP/2 without TLS use 'h2c'", at: node, key: fields.path("protocol"))
                }
                if value == .h2c && fields["tls"] != nil {
                    error("protocol 'h2c' is HTTP/2 without TLS; with 'tls' use 'h2' (or 'auto' to follow ALPN)",
                          at: node, key: fields.path("protocol"))
                }
            }
            result.append(service)
        }
        return result
    }

    private func count(_ fields: Fields, _ name: String, minimum: Int = 1) -> Int? {
        fields[name].flatMap {
            int($0, key: fields.path(name), in: minimum...1_000_000_000, rangeMessage: "must be at least \(minimum)")
        }
    }

    /// `outlierDetection: { consecutive5xx, consecutiveGatewayErrors, interval, baseEjectionTime, maxEjectionPercent }`.
    func outlierDetection(_ node: Node, key: String) -> OutlierDetectionConfig? {
        let allowed = ["consecutive5xx", "consecutiveGatewayErrors", "interval", "baseEjectionTime", "maxEjectionPercent"]
        guard let fields = fields(node, key: key, allowed: allowed) else { return nil }
        var config = OutlierDetectionConfig()
        // 0 turns a rule off, as in Istio.
        if fields["consecutive5xx"] != nil {
            let value = count(fields, "consecutive5xx", minimum: 0)
            config.consecutive5xx = value == 0 ? nil : value
        }
        if fields["consecutiveGatewayErrors"] != nil {
            let value = count(fields, "consecutiveGatewayErrors", minimum: 0)
            config.consecutiveGatewayErrors = value == 0 ? nil : value
        }
        if let value = fields["interval"].flatMap({ duration($0, key: fields.path("interval")) }) { config.interval = value }
        if let value = fields["baseEjectionTime"].flatMap({ duration($0, key: fields.path("baseEjectionTime")) }) {
            config.baseEjectionTime = value
        }
        if let value = fields["maxEjectionPercent"].flatMap({
            int($0, key: fields.path("maxEjectionPercent"), in: 0...100, rangeMessage: "must be from 0 to 100")
        }) {
            config.maxEjectionPercent = value
        }
        return config
    }

    /// `circuitBreaker: { maxConnections, maxPendingRequests, maxRequestsPerConnection }`.
    private func circuitBreaker(_ node: Node, key: String) -> CircuitBreakerConfig? {
        let allowed = ["maxConnections", "maxPendingRequests", "maxRequestsPerConnection"]
        guard let fields = fields(node, key: key, allowed: allowed) else { return nil }
        return CircuitBreakerConfig(maxConnections: count(fields, "maxConnections"),
                                    maxPendingRequests: count(fields, "maxPendingRequests", minimum: 0),
                                    maxRequestsPerConnection: count(fields, "maxRequestsPerConnection"))
    }

    /// `healthCheck: { path, interval, timeout, unhealthyThreshold, healthyThreshold }`.
    private func healthCheck(_ node: Node, key: String) -> HealthCheckConfig? {
        let allowed = ["path", "interval", "timeout", "unhealthyThreshold", "healthyThreshold"]
        guard let fields = fields(node, key: key, allowed: allowed) else { return nil }
        guard let pathNode = fields["path"] else {
            requireKey("path", in: fields, message: "a health check needs 'path' (what to GET, such as /healthz)")
            return nil
        }
        guard let path = string(pathNode, key: fields.path("path"), what: "a path such as /healthz") else { return nil }
        guard path.hasPrefix("/"), !path.contains(where: { $0 == " " || $0 == "\r" || $0 == "\n" }) else {
            error("expected a path starting with '/', got '\(path)'", at: pathNode, key: fields.path("path"))
            return nil
        }
        var config = HealthCheckConfig(path: path)
        if let value = fields["interval"].flatMap({ duration($0, key: fields.path("interval")) }) { config.interval = value }
        if let value = fields["timeout"].flatMap({ duration($0, key: fields.path("timeout")) }) { config.timeout = value }
        if let value = count(fields, "unhealthyThreshold") { config.unhealthyThreshold = value }
        if let value = count(fields, "healthyThreshold") { config.healthyThreshold = value }
        return config
    }

    /// `tls: { ca, certificate, key, serverName, subjectAltNames }` on a service.
    private func upstreamTLS(_ node: Node, key: String) -> UpstreamTLSConfig? {
        let allowed = ["ca", "certificate", "key", "serverName", "subjectAltNames"]
        // `tls: {}` is TLS verified against the system's roots.
        guard let fields = fields(node, key: key, allowed: allowed) else { return nil }
        var config = UpstreamTLSConfig()
        func path(_ name: String) -> String? {
            guard let valueNode = fields[name] else { return nil }
            guard let value = string(valueNode, key: fields.path(name), what: "a file path"), !value.isEmpty else {
                error("expected a file path\(Self.got(valueNode))", at: valueNode, key: fields.path(name))
                return nil
            }
            return value
        }
        config.ca = path("ca")
        config.certificate = path("certificate")
        config.key = path("key")
        if (fields["certificate"] == nil) != (fields["key"] == nil) {
            let present = fields["certificate"] != nil ? "certificate" : "key"
            error("a client certificate needs both 'certificate' and 'key'", at: fields[present], key: fields.path(present))
        }
        if let nameNode = fields["serverName"] {
            config.serverName = string(nameNode, key: fields.path("serverName"), what: "a host name")
        }
        if let sansNode = fields["subjectAltNames"], let items = sequence(sansNode, key: fields.path("subjectAltNames"), of: "names") {
            config.subjectAltNames = items.enumerated().compactMap { index, item in
                string(item, key: Self.path(fields.path("subjectAltNames"), index: index), what: "a DNS name or URI")
            }
        }
        return config
    }

    private func retryBudget(_ node: Node, key: String) -> RetryBudgetConfig? {
        guard let fields = fields(node, key: key, allowed: ["percent", "interval", "minRetriesPerSecond", "minRetries"]) else { return nil }
        var budget = RetryBudgetConfig()
        if let value = fields["percent"].flatMap({ int($0, key: fields.path("percent"), in: 0...100, rangeMessage: "must be from 0 to 100") }) {
            budget.percent = value
        }
        if let value = fields["interval"].flatMap({ duration($0, key: fields.path("interval")) }) {
            budget.interval = value
        }
        if let value = fields["minRetriesPerSecond"].flatMap({ int($0, key: fields.path("minRetriesPerSecond"), in: 0...1_000_000, rangeMessage: "must be 0 or more") }) {
            budget.minRetriesPerSecond = value
        }
        if let value = fields["minRetries"].flatMap({ int($0, key: fields.path("minRetries"), in: 0...1_000_000, rangeMessage: "must be 0 or more") }) {
            budget.minRetries = value
        }
        return budget
    }
}
