import Yams

extension ConfigReader {
    /// `services:` — upstream clusters by name, kept in file order.
    func services(_ node: Node) -> [ServiceConfig] {
        guard let entries = namedEntries(node, key: "services", what: "service") else { return [] }
        var result: [ServiceConfig] = []
        for entry in entries {
            let path = Self.path("services", entry.name)
            let allowed = ["endpoints", "loadBalancer", "connectTimeout", "maxConnectionsPerEndpoint", "retryBudget"]
            guard let fields = fields(entry.value, key: path, allowed: allowed) else { continue }
            var service = ServiceConfig(name: entry.name, endpoints: [])

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
            result.append(service)
        }
        return result
    }

    private func retryBudget(_ node: Node, key: String) -> RetryBudgetConfig? {
        guard let fields = fields(node, key: key, allowed: ["percent", "interval", "minRetries"]) else { return nil }
        var budget = RetryBudgetConfig()
        if let value = fields["percent"].flatMap({ int($0, key: fields.path("percent"), in: 0...100, rangeMessage: "must be from 0 to 100") }) {
            budget.percent = value
        }
        if let value = fields["interval"].flatMap({ duration($0, key: fields.path("interval")) }) {
            budget.interval = value
        }
        if let value = fields["minRetries"].flatMap({ int($0, key: fields.path("minRetries"), in: 0...1_000_000, rangeMessage: "must be 0 or more") }) {
            budget.minRetries = value
        }
        return budget
    }
}
