import Yams

extension ConfigReader {
    static let topLevelKeys = ["listeners", "admin", "limits", "accessLog", "policies", "services", "routes", "tcp", "tracing"]

    /// Reads the whole document; nil when anything was reported.
    func gatewayConfig(from root: Node?) -> GatewayConfig? {
        guard let root, !isNull(root) else {
            error("the file is empty; expected at least a 'listeners' section", at: root, key: "listeners")
            return nil
        }
        guard let top = fields(root, key: "", allowed: Self.topLevelKeys) else { return nil }

        // Policies first whatever the file order, so listeners and routes can check the names they use.
        let policyList = top["policies"].map { self.policies($0) } ?? []
        let listenerList = self.listeners(in: top, policies: policyList, required: top["tcp"] == nil)
        let adminConfig = top["admin"].flatMap { self.admin($0, listeners: listenerList) }
        let limitsConfig = top["limits"].map { self.limits($0) } ?? LimitsConfig()
        let accessLogConfig = top["accessLog"].map { self.accessLog($0) } ?? AccessLogConfig()
        // Services first whatever the file order, so routes can check the names they use.
        let serviceList = top["services"].map { self.services($0) } ?? []
        let routeList = top["routes"].map { self.routes($0, services: serviceList, policies: policyList) } ?? []
        let tracingConfig = top["tracing"].flatMap { self.tracing($0) }
        let tcpList = top["tcp"].map { self.tcpListeners($0, services: serviceList, listeners: listenerList, admin: adminConfig) } ?? []

        guard !hasErrors else { return nil }
        return GatewayConfig(sourceFile: file, listeners: listenerList, admin: adminConfig, limits: limitsConfig,
                             services: serviceList, routes: routeList, accessLog: accessLogConfig, policies: policyList,
                             tcp: tcpList, tracing: tracingConfig)
    }
}
