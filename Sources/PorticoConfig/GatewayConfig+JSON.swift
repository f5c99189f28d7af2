import Foundation

extension GatewayConfig {
    /// The running config as pretty JSON with sorted keys, for the admin `GET /config` endpoint.
    ///
    /// The shape mirrors `gateway.yaml` key for key, with defaults filled in, so the output is
    /// itself a valid config (JSON is YAML) and reading it needs no second schema:
    /// sizes are numbers of bytes, durations are strings such as `"15s"`, unset optional
    /// values are left out, and every route carries its effective `name`.
    /// Secret values are replaced by `"<redacted>"` in one place, `ConfigRedaction`.
    public func renderJSON() -> String {
        renderJSON(redacting: ConfigRedaction.secretKeyPaths)
    }

    func renderJSON(redacting secretKeyPaths: Set<String>) -> String {
        let tree = ConfigRedaction.redact(jsonObject(), secretKeyPaths: secretKeyPaths)
        // The tree holds only strings, numbers, booleans, arrays and dictionaries, which
        // JSONSerialization always accepts; a failure here would be a bug in `jsonObject()`.
        let data = try! JSONSerialization.data(withJSONObject: tree,
                                               options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
        return String(decoding: data, as: UTF8.self)
    }

    func jsonObject() -> [String: Any] {
        var object: [String: Any] = [
            "listeners": listeners.map(\.jsonObject),
            "limits": limits.jsonObject,
            "accessLog": ["format": accessLog.format.rawValue],
            "services": Dictionary(uniqueKeysWithValues: services.map { ($0.name, $0.jsonObject) }),
            "routes": routes.map(\.jsonObject),
        ]
        if let admin { object["admin"] = ["address": admin.address.description] }
        if !tcp.isEmpty { object["tcp"] = tcp.map(\.jsonObject) }
        if let tracing {
            object["tracing"] = [
                "endpoint": tracing.endpoint.description, "serviceName": tracing.serviceName,
                "sampling": ["ratio": tracing.ratio, "parentBased": tracing.parentBased,
                             "alwaysSampleErrors": tracing.alwaysSampleErrors],
                "exportInterval": tracing.exportInterval.description, "exportTimeout": tracing.exportTimeout.description,
                "maxQueueSize": tracing.maxQueueSize,
            ] as [String: Any]
        }
        if !policies.isEmpty {
            object["policies"] = Dictionary(uniqueKeysWithValues: policies.map { ($0.name, $0.jsonObject) })
        }
        return object
    }
}

private extension PolicyConfig {
    var jsonObject: [String: Any] {
        switch kind {
        case .rateLimit(let limit):
            let key: Any
            switch limit.key {
            case .clientIP: key = "client_ip"
            case .header(let name): key = ["header": name]
            }
            return ["rateLimit": ["requests": limit.requests, "per": limit.per.description, "burst": limit.burst,
                                  "key": key] as [String: Any]]
        case .jwt(let jwt):
            var object: [String: Any] = [
                "issuer": jwt.issuer, "audiences": jwt.audiences, "clockSkew": jwt.clockSkew.description,
                "optional": jwt.optional, "forwardOriginalToken": jwt.forwardOriginalToken,
                "cacheDuration": jwt.cacheDuration.description, "minRefreshInterval": jwt.minRefreshInterval.description,
                "claimToHeaders": jwt.claimToHeaders.map { ["claim": $0.claim, "header": $0.header] },
            ]
            switch jwt.keys {
            case .file(let path): object["jwks"] = path
            case .url(let url): object["jwksUri"] = url
            }
            switch jwt.from {
            case .header(let name, let prefix): object["from"] = ["header": name, "prefix": prefix]
            case .query(let name): object["from"] = ["query": name]
            }
            if let header = jwt.forwardHeader { object["forwardHeader"] = header }
            return ["jwt": object]
        case .authorization(let authorization):
            let rules: [[String: Any]] = authorization.rules.map { rule in
                var from: [String: Any] = [:], to: [String: Any] = [:], object: [String: Any] = [:]
                if let value = rule.principals { from["principals"] = value }
                if let value = rule.requestPrincipals { from["requestPrincipals"] = value }
                if let value = rule.methods { to["methods"] = value }
                if let value = rule.paths { to["paths"] = value }
                if let value = rule.hosts { to["hosts"] = value }
                if !from.isEmpty { object["from"] = from }
                if !to.isEmpty { object["to"] = to }
                if !rule.claims.isEmpty {
                    object["when"] = ["claims": Dictionary(rule.claims.map { ($0.name, $0.values) }, uniquingKeysWith: { a, _ in a })]
                }
                return object
            }
            return ["authorization": ["rules": rules]]
        }
    }
}

/// The single place that decides which config values are secret in rendered output.
///
/// Nothing in today's schema is secret: TLS certificate and key *paths* are fine to show
/// (the key material itself is never part of the config). When a secret-bearing key arrives
/// (a JWT signing secret, an upstream password), add its path here and `renderJSON` hides it.
enum ConfigRedaction {
    static let placeholder = "<redacted>"

    /// Dotted key paths as in diagnostics, with `[*]` for any list index and `*` for any
    /// user-chosen name: `listeners[*].tls.key`, `services.*.password`.
    static let secretKeyPaths: Set<String> = [
        // A route that sends its backend credentials keeps them out of the admin API.
        "routes[*].requestHeaders.set.authorization", "routes[*].requestHeaders.add.authorization",
        "routes[*].requestHeaders.set.cookie", "routes[*].requestHeaders.add.cookie",
    ]

    static func redact(_ value: Any, secretKeyPaths: Set<String>) -> Any {
        guard !secretKeyPaths.isEmpty else { return value }
        let patterns = secretKeyPaths.map { $0.split(separator: ".", omittingEmptySubsequences: false).map(String.init) }
        return redact(value, path: [], patterns: patterns)
    }

    private static func redact(_ value: Any, path: [String], patterns: [[String]]) -> Any {
        if patterns.contains(where: { matches(path, $0) }) { return placeholder }
        if let object = value as? [String: Any] {
            var result: [String: Any] = [:]
            for (key, child) in object {
                result[key] = redact(child, path: path + [key], patterns: patterns)
            }
            return result
        }
        if let array = value as? [Any], let last = path.last {
            // A list index belongs to the path component of the list's key (`listeners[*]`).
            return array.map { redact($0, path: Array(path.dropLast()) + ["\(last)[*]"], patterns: patterns) }
        }
        return value
    }

    private static func matches(_ path: [String], _ pattern: [String]) -> Bool {
        path.count == pattern.count && zip(path, pattern).allSatisfy { component, wanted in
            wanted == "*" || wanted == component
        }
    }
}

private extension ListenerConfig {
    var jsonObject: [String: Any] {
        var object: [String: Any] = ["name": name, "address": address.description]
        if let tls {
            var tlsObject: [String: Any] = ["certificate": tls.certificate, "key": tls.key, "cipherSuites": tls.cipherSuites]
            if let clientCA = tls.clientCA {
                tlsObject["clientCA"] = clientCA
                tlsObject["mode"] = tls.mode.rawValue
            }
            if !tls.sniCertificates.isEmpty {
                tlsObject["certificates"] = tls.sniCertificates.map { ["names": $0.names, "certificate": $0.certificate, "key": $0.key] }
            }
            object["tls"] = tlsObject
        }
        if !policies.isEmpty { object["policies"] = policies }
        object["headersWithUnderscores"] = headersWithUnderscores.rawValue
        return object
    }
}

private extension LimitsConfig {
    var jsonObject: [String: Any] {
        [
            "maxRequestHeaders": maxRequestHeaders,
            "maxRequestBody": maxRequestBody,
            "idleTimeout": idleTimeout.description,
            "drainTimeout": drainTimeout.description,
            "requestHeadersTimeout": requestHeadersTimeout.description,
        ]
    }
}

private extension ServiceConfig {
    var jsonObject: [String: Any] {
        var object: [String: Any] = [
            "endpoints": endpoints.map(\.description),
            "loadBalancer": loadBalancer.rawValue,
            "connectTimeout": connectTimeout.description,
            "maxConnectionsPerEndpoint": maxConnectionsPerEndpoint,
        ]
        if let outlier = outlierDetection {
            var value: [String: Any] = ["interval": outlier.interval.description,
                                        "baseEjectionTime": outlier.baseEjectionTime.description,
                                        "maxEjectionPercent": outlier.maxEjectionPercent]
            value["consecutive5xx"] = outlier.consecutive5xx ?? 0
            value["consecutiveGatewayErrors"] = outlier.consecutiveGatewayErrors ?? 0
            object["outlierDetection"] = value
        }
        if let breaker = circuitBreaker {
            var value: [String: Any] = [:]
            if let limit = breaker.maxConnections { value["maxConnections"] = limit }
            if let limit = breaker.maxPendingRequests { value["maxPendingRequests"] = limit }
            if let limit = breaker.maxRequestsPerConnection { value["maxRequestsPerConnection"] = limit }
            object["circuitBreaker"] = value
        }
        if let check = healthCheck {
            object["healthCheck"] = ["path": check.path, "interval": check.interval.description, "timeout": check.timeout.description,
                                     "unhealthyThreshold": check.unhealthyThreshold, "healthyThreshold": check.healthyThreshold]
        }
        if let tls {
            var value: [String: Any] = ["subjectAltNames": tls.subjectAltNames]
            if let ca = tls.ca { value["ca"] = ca }
            if let certificate = tls.certificate { value["certificate"] = certificate }
            if let key = tls.key { value["key"] = key }
            if let serverName = tls.serverName { value["serverName"] = serverName }
            object["tls"] = value
        }
        return object
    }
}

private extension RouteConfig {
    var jsonObject: [String: Any] {
        var object: [String: Any] = [
            "name": name,
            "match": match.jsonObject,
            "timeout": timeout.description,
        ]
        if let mirror { object["mirror"] = ["service": mirror.service, "percent": mirror.percent] }
        if action.forwards { object["upgrades"] = upgrades }
        switch action {
        case .service(let service):
            object["service"] = service
        case .function(let function):
            object["function"] = function
        case .split(let backends):
            let list = backends.map { backend -> [String: Any] in
                switch backend.backend {
                case .service(let name): return ["service": name, "weight": backend.weight]
                case .function(let name): return ["function": name, "weight": backend.weight]
                }
            }
            // The shape the config was written in: the mapping only when it says more than the list.
            switch splitStickyOn {
            case nil: object["split"] = list
            case .header(let name)?: object["split"] = ["backends": list, "stickyOn": ["header": name]] as [String: Any]
            case .cookie(let name)?: object["split"] = ["backends": list, "stickyOn": ["cookie": name]] as [String: Any]
            }
        case .directResponse(let response):
            object["directResponse"] = [
                "status": response.status, "body": response.body, "contentType": response.contentType,
            ] as [String: Any]
        case .redirect(let redirect):
            object["redirect"] = redirect.jsonObject
        }
        if let rewrite {
            var rewriteObject: [String: Any] = [:]
            if let prefix = rewrite.prefix { rewriteObject["prefix"] = prefix }
            if let host = rewrite.host { rewriteObject["host"] = host }
            object["rewrite"] = rewriteObject
        }
        if !policies.isEmpty { object["policies"] = policies }
        if let fault {
            var faultObject: [String: Any] = [:]
            if let abort = fault.abort { faultObject["abort"] = ["percent": abort.percent, "status": abort.status] }
            if let delay = fault.delay {
                faultObject["delay"] = ["percent": delay.percent, "duration": delay.duration.description] as [String: Any]
            }
            object["fault"] = faultObject
        }
        if let requestHeaders { object["requestHeaders"] = requestHeaders.jsonObject }
        if let responseHeaders { object["responseHeaders"] = responseHeaders.jsonObject }
        return object
    }
}

private extension HeaderModifierConfig {
    var jsonObject: [String: Any] {
        var object: [String: Any] = [:]
        if !self.set.isEmpty { object["set"] = Dictionary(uniqueKeysWithValues: self.set.map { ($0.name, $0.value) }) }
        if !add.isEmpty { object["add"] = Dictionary(uniqueKeysWithValues: add.map { ($0.name, $0.value) }) }
        if !remove.isEmpty { object["remove"] = remove }
        return object
    }
}

private extension RouteMatch {
    var jsonObject: [String: Any] {
        var object: [String: Any] = [:]
        switch host {
        case .exact(let name): object["host"] = name
        case .suffix(let suffix): object["host"] = "*" + suffix
        case nil: break
        }
        switch path {
        case .any: break
        case .prefix(let prefix): object["prefix"] = prefix
        case .exact(let path): object["path"] = path
        case .regex(let pattern): object["regex"] = pattern
        }
        if !headers.isEmpty {
            var headerObject: [String: Any] = [:]
            for header in headers {
                switch header.kind {
                case .exact(let value): headerObject[header.name] = ["exact": value]
                case .present(let present): headerObject[header.name] = ["present": present]
                }
            }
            object["headers"] = headerObject
        }
        if !methods.isEmpty { object["methods"] = methods }
        return object
    }
}

private extension RedirectConfig {
    var jsonObject: [String: Any] {
        var object: [String: Any] = ["status": status, "stripQuery": stripQuery]
        if let scheme { object["scheme"] = scheme }
        if let host { object["host"] = host }
        if let port { object["port"] = port }
        if let path { object["path"] = path }
        if let prefix { object["prefix"] = prefix }
        return object
    }
}
