import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import PorticoAuth
import PorticoConfig
import Prometheus
import PorticoHTTP1

/// One `authorization` policy, compiled.
final class AuthorizationPolicy: Sendable {
    let name: String
    let rules: AuthorizationRules
    private let deniedCounter: Counter?

    init(name: String, config: AuthorizationConfig, metrics: GatewayMetrics?) {
        self.name = name
        self.rules = AuthorizationRules(rules: config.rules.map { rule in
            AuthorizationRules.Rule(
                principals: rule.principals?.map(StringPattern.init),
                requestPrincipals: rule.requestPrincipals?.map(StringPattern.init),
                methods: rule.methods,
                paths: rule.paths?.map(StringPattern.init),
                hosts: rule.hosts?.map(StringPattern.init),
                claims: rule.claims.map { ($0.name, $0.values) })
        })
        self.deniedCounter = metrics?.authorizationDeniedCounter(policy: name)
    }

    func allows(_ request: AuthorizationRules.Request) -> Bool {
        if rules.allows(request) { return true }
        deniedCounter?.increment()
        return false
    }
}
