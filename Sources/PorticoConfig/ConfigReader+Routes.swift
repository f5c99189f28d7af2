import Yams

extension ConfigReader {
    static let routeKeys = ["name", "match", "service", "function", "split", "directResponse", "redirect", "timeout", "rewrite",
                            "policies", "fault", "retries", "mirror", "upgrades", "requestHeaders", "responseHeaders", "cors"]
    static let actionKeys = ["service", "function", "split", "directResponse", "redirect"]

    /// `routes:` — in match order; each needs a `match` and exactly one action.
    func routes(_ node: Node, services: [ServiceConfig], policies: [PolicyConfig] = []) -> [RouteConfig] {
        guard let items = sequence(node, key: "routes", of: "routes") else { return [] }
        let serviceNames = services.map(\.name)
        var namesSeen: [String: String] = [:]
        var result: [RouteConfig] = []

        for (index, item) in items.enumerated() {
            let path = Self.path("routes", index: index)
            guard let fields = fields(item, key: path, allowed: Self.routeKeys) else { continue }
            let errorsBefore = diagnostics.count

            let name = routeName(fields, index: index, namesSeen: &namesSeen)

            var match: RouteMatch?
            if let matchNode = fields["match"] {
                match = routeMatch(matchNode, key: fields.path("match"))
            } else {
                requireKey("match", in: fields,
                           message: "route '\(name)' needs a 'match'; use `match: { prefix: / }` to match every request")
            }

            var splitStickyOn: SplitStickiness?
            let action = routeAction(fields, routeName: name, pathMatch: match?.path, serviceNames: serviceNames,
                                     splitStickyOn: &splitStickyOn)

            var timeout = ConfigDuration.seconds(15)
            if let timeoutNode = fields["timeout"], let value = duration(timeoutNode, key: fields.path("timeout")) {
                timeout = value
            }

            var rewrite: RewriteConfig?
            if let rewriteNode = fields["rewrite"] {
                rewrite = self.rewrite(rewriteNode, key: fields.path("rewrite"))
                // Only a forwarded request has an upstream URL to rewrite.
                requireForwardingAction(for: "rewrite", in: fields)
            }

            let policyNames = fields["policies"].map { self.policyNames($0, key: fields.path("policies"), known: policies) } ?? []
            var fault: FaultConfig?
            if let faultNode = fields["fault"] {
                fault = self.fault(faultNode, key: fields.path("fault"))
                requireForwardingAction(for: "fault", in: fields)
            }
            var retries: RetryConfig?
            if let retriesNode = fields["retries"] {
                retries = self.retries(retriesNode, key: fields.path("retries"))
                requireForwardingAction(for: "retries", in: fields)
            }

            var mirror: MirrorConfig?
            if let mirrorNode = fields["mirror"] {
                mirror = self.mirror(mirrorNode, key: fields.path("mirror"), serviceNames: serviceNames)
                requireForwardingAction(for: "mirror", in: fields)
            }

            var upgrades = RouteConfig.defaultUpgrades
            if let upgradesNode = fields["upgrades"] {
                upgrades = self.upgrades(upgradesNode, key: fields.path("upgrades"))
                requireForwardingAction(for: "upgrades", in: fields)
            }

            // Both edit what passes between client and backend: on a route the gateway answers
            // itself there is no backend request, and its own answers are left as they are.
            var requestHeaders: HeaderModifierConfig?
            if let node = fields["requestHeaders"] {
                requestHeaders = headerModifier(node, key: fields.path("requestHeaders"), side: .request)
                requireForwardingAction(for: "requestHeaders", in: fields)
            }
            var responseHeaders: HeaderModifierConfig?
            if let node = fields["responseHeaders"] {
                responseHeaders = headerModifier(node, key: fields.path("responseHeaders"), side: .response)
                requireForwardingAction(for: "responseHeaders", in: fields)
            }

            var cors: CORSConfig?
            if let node = fields["cors"] {
                cors = self.cors(node, key: fields.path("cors"))
            }

            guard diagnostics.count == errorsBefore, let match, let action else { continue }
            var route = RouteConfig(index: index, name: name, match: match, action: action, timeout: timeout,
                                    rewrite: rewrite, policies: policyNames, fault: fault, retries: retries,
                                    mirror: mirror, upgrades: upgrades, splitStickyOn: splitStickyOn,
                                    requestHeaders: requestHeaders, responseHeaders: responseHeaders,
                                    location: location(of: item))
            route.cors = cors
            result.append(route)
        }
        return result
    }

    /// `cors: { allowOrigins, allowMethods, allowHeaders, exposeHeaders, maxAge, allowCredentials }`,
    /// as Envoy's route CORS policy: origins are exact (`https://app.example.com`) or `*`.
    func cors(_ node: Node, key: String) -> CORSConfig? {
        let allowed = ["allowOrigins", "allowMethods", "allowHeaders", "exposeHeaders", "maxAge", "allowCredentials"]
        guard let fields = fields(node, key: key, allowed: allowed) else { return nil }
        var config = CORSConfig()
        func names(_ name: String, what: String, check: (String) -> Bool) -> [String]? {
            guard let listNode = fields[name], let items = sequence(listNode, key: fields.path(name), of: what) else { return nil }
            return items.enumerated().compactMap { index, item in
                let itemKey = Self.path(fields.path(name), index: index)
                guard let value = string(item, key: itemKey, what: what) else { return nil }
                guard check(value) else {
                    error("expected \(what), got '\(value)'", at: item, key: itemKey)
                    return nil
                }
                return value
            }
        }
        if let origins = names("allowOrigins", what: "an origin such as https://app.example.com, or *", check: { origin in
            origin == "*" || ((origin.hasPrefix("https://") || origin.hasPrefix("http://"))
                && !origin.dropFirst(8).contains("/") && !origin.contains(" "))
        }) {
            config.allowOrigins = origins
        } else if fields["allowOrigins"] == nil {
            requireKey("allowOrigins", in: fields, message: "cors needs 'allowOrigins' (the origins allowed, or [\"*\"])")
        }
        if let methods = names("allowMethods", what: "a method such as POST", check: { Self.isToken($0) }) {
            config.allowMethods = methods.map { $0.uppercased() }
        }
        if let headers = names("allowHeaders", what: "a header name", check: { Self.isToken($0) }) {
            config.allowHeaders = headers.map { $0.lowercased() }
        }
        if let headers = names("exposeHeaders", what: "a header name", check: { Self.isToken($0) }) {
            config.exposeHeaders = headers.map { $0.lowercased() }
        }
        if let value = fields["maxAge"].flatMap({ duration($0, key: fields.path("maxAge")) }) { config.maxAge = value }
        if let value = fields["allowCredentials"].flatMap({ bool($0, key: fields.path("allowCredentials")) }) {
            config.allowCredentials = value
            if value && config.allowOrigins.contains("*") {
                error("allowCredentials cannot go with allowOrigins '*' (browsers refuse it); list the origins",
                      at: fields["allowCredentials"], key: fields.path("allowCredentials"))
            }
        }
        return config
    }

    /// `upgrades: [websocket, ...]`: protocol tokens (RFC 9110 7.8), lower-cased. `h2c` is
    /// refused: RFC 9113 3.1 deprecates that upgrade, and tunnelling it would let a client speak
    /// HTTP/2 straight to the backend, past routing and every policy.
    func upgrades(_ node: Node, key: String) -> [String] {
        guard let items = sequence(node, key: key, of: "upgrade protocols") else { return [] }
        var result: [String] = []
        for (index, item) in items.enumerated() {
            let itemKey = Self.path(key, index: index)
            guard let value = string(item, key: itemKey, what: "a protocol name such as websocket") else { continue }
            let token = value.lowercased()
            if token.isEmpty || !token.utf8.allSatisfy(HTTPToken.isTokenByte) {
                error("expected a protocol name such as websocket, got '\(value)'", at: item, key: itemKey)
            } else if token == "h2c" || token.hasPrefix("h2c/") {
                error("h2c is never proxied (RFC 9113 deprecates the h2c upgrade); clients reach HTTP/2 by prior knowledge or TLS",
                      at: item, key: itemKey)
            } else if !result.contains(token) {
                result.append(token)
            }
        }
        return result
    }

    /// Reports `key` on a redirect or direct-response route, where it would silently do nothing.
    private func requireForwardingAction(for key: String, in fields: Fields) {
        if let actionKey = Self.actionKeys.first(where: fields.has), actionKey == "directResponse" || actionKey == "redirect" {
            error("\(key) only applies to routes that forward to a service, a function or a split, not to \(actionKey)",
                  at: fields.keyNode(key), key: fields.path(key))
        }
    }

    /// The explicit name, or `route-N`; names label metrics and logs, so they must be unique.
    private func routeName(_ fields: Fields, index: Int, namesSeen: inout [String: String]) -> String {
        var name = "route-\(index)"
        if let nameNode = fields["name"], let given = string(nameNode, key: fields.path("name")) {
            if given.isEmpty {
                error("expected a route name, got ''", at: nameNode, key: fields.path("name"))
            } else {
                name = given
            }
        }
        if let first = namesSeen[name] {
            error("route name '\(name)' is already used by \(first)", at: fields["name"] ?? fields.node, key: fields.path("name"))
        } else {
            namesSeen[name] = fields.path
        }
        return name
    }

    private func rewrite(_ node: Node, key: String) -> RewriteConfig? {
        guard let fields = fields(node, key: key, allowed: ["prefix", "host"]) else { return nil }
        var rewrite = RewriteConfig()
        if let prefixNode = fields["prefix"] {
            rewrite.prefix = urlPath(prefixNode, key: fields.path("prefix"))
        }
        if let hostNode = fields["host"], let host = string(hostNode, key: fields.path("host"), what: "a host name") {
            if host.isEmpty || host.contains(where: { $0.isWhitespace }) {
                error("expected a host name such as api.internal or api.internal:8080, got '\(host)'",
                      at: hostNode, key: fields.path("host"))
            } else {
                rewrite.host = host
            }
        }
        return rewrite
    }

    /// A path as requests carry it: starts with `/`; no spaces, query or fragment, because
    /// matching and rewriting work on the path alone and such a value could never apply.
    func urlPath(_ node: Node, key: String) -> String? {
        guard let value = string(node, key: key, what: "a path starting with '/'") else { return nil }
        guard value.hasPrefix("/") else {
            error("must start with '/', got '\(value)'", at: node, key: key)
            return nil
        }
        guard !value.contains(where: { $0.isWhitespace || $0 == "?" || $0 == "#" }) else {
            error("must be a URL path without spaces, '?' or '#', got '\(value)'", at: node, key: key)
            return nil
        }
        return value
    }
}
