import Yams

extension ConfigReader {
    static let policyKinds = ["rateLimit", "jwt", "authorization"]

    /// `policies:` — a map from name to exactly one policy kind.
    func policies(_ node: Node) -> [PolicyConfig] {
        guard let entries = namedEntries(node, key: "policies", what: "policies") else { return [] }
        var result: [PolicyConfig] = []
        for entry in entries {
            let path = Self.path("policies", entry.name)
            guard let fields = fields(entry.value, key: path, allowed: Self.policyKinds) else { continue }
            guard fields.entries.count == 1, let kind = fields.entries.first else {
                error("a policy has exactly one of \(Self.list(Self.policyKinds))", at: entry.value, key: path)
                continue
            }
            switch kind.name {
            case "rateLimit":
                if let limit = rateLimit(kind.value, key: fields.path("rateLimit")) {
                    result.append(PolicyConfig(name: entry.name, kind: .rateLimit(limit), location: location(of: entry.key)))
                }
            case "jwt":
                if let jwt = jwt(kind.value, key: fields.path("jwt")) {
                    result.append(PolicyConfig(name: entry.name, kind: .jwt(jwt), location: location(of: entry.key)))
                }
            case "authorization":
                if let authorization = authorization(kind.value, key: fields.path("authorization")) {
                    result.append(PolicyConfig(name: entry.name, kind: .authorization(authorization),
                                               location: location(of: entry.key)))
                }
            default:
                break
            }
        }
        return result
    }

    /// `jwt: { issuer, audiences, jwks | jwksUri, from, clockSkew, optional, forwardOriginalToken,
    /// forwardHeader, claimToHeaders, cacheDuration, minRefreshInterval }`.
    private func jwt(_ node: Node, key: String) -> JWTConfig? {
        let allowed = ["issuer", "audiences", "jwks", "jwksUri", "from", "clockSkew", "optional", "forwardOriginalToken",
                       "forwardHeader", "claimToHeaders", "cacheDuration", "minRefreshInterval"]
        guard let fields = fields(node, key: key, allowed: allowed) else { return nil }
        let errorsBefore = diagnostics.count
        var issuer: String?
        if let issuerNode = fields["issuer"] {
            issuer = nonEmptyString(issuerNode, key: fields.path("issuer"), what: "an issuer such as https://auth.example.com")
        } else {
            requireKey("issuer", in: fields, message: "a jwt policy needs 'issuer' (the token's iss claim)")
        }
        var keys: JWTConfig.KeySource?
        switch (fields["jwks"], fields["jwksUri"]) {
        case (let file?, nil):
            keys = nonEmptyString(file, key: fields.path("jwks"), what: "a JWKS file path").map { .file($0) }
        case (nil, let uri?):
            if let text = nonEmptyString(uri, key: fields.path("jwksUri"), what: "an http(s) URL") {
                if text.hasPrefix("http://") || text.hasPrefix("https://") {
                    keys = .url(text)
                } else {
                    error("expected an http:// or https:// URL, got '\(text)'", at: uri, key: fields.path("jwksUri"))
                }
            }
        case (_?, let uri?):
            error("give either 'jwks' (a file) or 'jwksUri' (a URL), not both", at: uri, key: fields.path("jwksUri"))
        case (nil, nil):
            requireKey("jwks", in: fields, message: "a jwt policy needs its keys: 'jwks' (a file) or 'jwksUri' (a URL)")
        }
        var config = JWTConfig(issuer: issuer ?? "", keys: keys ?? .file(""))
        if let node = fields["audiences"] { config.audiences = stringList(node, key: fields.path("audiences"), of: "audiences") }
        if let node = fields["from"], let from = tokenLocation(node, key: fields.path("from")) { config.from = from }
        if let node = fields["clockSkew"], let value = duration(node, key: fields.path("clockSkew"), allowZero: true) {
            config.clockSkew = value
        }
        if let node = fields["optional"], let value = bool(node, key: fields.path("optional")) { config.optional = value }
        if let node = fields["forwardOriginalToken"], let value = bool(node, key: fields.path("forwardOriginalToken")) {
            config.forwardOriginalToken = value
        }
        if let node = fields["forwardHeader"] { config.forwardHeader = outputHeaderName(node, key: fields.path("forwardHeader")) }
        if let node = fields["claimToHeaders"], let items = sequence(node, key: fields.path("claimToHeaders"), of: "claim mappings") {
            for (index, item) in items.enumerated() {
                let itemKey = Self.path(fields.path("claimToHeaders"), index: index)
                guard let mapping = self.fields(item, key: itemKey, allowed: ["claim", "header"]) else { continue }
                let claim = mapping["claim"].flatMap { nonEmptyString($0, key: mapping.path("claim"), what: "a claim name") }
                let header = mapping["header"].flatMap { outputHeaderName($0, key: mapping.path("header")) }
                if mapping["claim"] == nil { requireKey("claim", in: mapping) }
                if mapping["header"] == nil { requireKey("header", in: mapping) }
                if let claim, let header { config.claimToHeaders.append(.init(claim: claim, header: header)) }
            }
        }
        if let node = fields["cacheDuration"], let value = duration(node, key: fields.path("cacheDuration")) {
            config.cacheDuration = value
        }
        if let node = fields["minRefreshInterval"], let value = duration(node, key: fields.path("minRefreshInterval")) {
            // Any client can send an unknown kid; below a second that would let it keep the
            // key set fetched without pause.
            if value < .seconds(1) {
                error("must be at least 1s, got \(value)", at: node, key: fields.path("minRefreshInterval"))
            } else {
                config.minRefreshInterval = value
            }
        }
        guard diagnostics.count == errorsBefore, issuer != nil, keys != nil else { return nil }
        return config
    }

    /// `from: { header: NAME, prefix: "Bearer " }` or `from: { query: NAME }`.
    private func tokenLocation(_ node: Node, key: String) -> JWTConfig.TokenLocation? {
        guard let fields = fields(node, key: key, allowed: ["header", "prefix", "query"]) else { return nil }
        if let queryNode = fields["query"] {
            if fields["header"] != nil || fields["prefix"] != nil {
                error("give either 'header' (with an optional 'prefix') or 'query', not both", at: queryNode, key: fields.path("query"))
                return nil
            }
            return nonEmptyString(queryNode, key: fields.path("query"), what: "a query parameter name").map { .query($0) }
        }
        guard let headerNode = fields["header"] else {
            requireKey("header", in: fields, message: "'from' needs 'header' or 'query'")
            return nil
        }
        guard let name = headerName(headerNode, key: fields.path("header")) else { return nil }
        var prefix = name == "authorization" ? "Bearer " : ""
        if let prefixNode = fields["prefix"], let value = string(prefixNode, key: fields.path("prefix")) { prefix = value }
        return .header(name: name, prefix: prefix)
    }

    /// `authorization: { rules: [ { from, to, when } ] }`.
    private func authorization(_ node: Node, key: String) -> AuthorizationConfig? {
        guard let fields = fields(node, key: key, allowed: ["rules"]) else { return nil }
        guard let rulesNode = fields["rules"] else {
            requireKey("rules", in: fields, message: "an authorization policy needs 'rules' (requests matching none get 403)")
            return nil
        }
        guard let items = sequence(rulesNode, key: fields.path("rules"), of: "rules") else { return nil }
        let errorsBefore = diagnostics.count
        var rules: [AuthorizationConfig.Rule] = []
        for (index, item) in items.enumerated() {
            let ruleKey = Self.path(fields.path("rules"), index: index)
            guard let rule = self.fields(item, key: ruleKey, allowed: ["from", "to", "when"]) else { continue }
            var result = AuthorizationConfig.Rule()
            if let fromNode = rule["from"],
               let from = self.fields(fromNode, key: rule.path("from"), allowed: ["principals", "requestPrincipals"]) {
                result.principals = from["principals"].map { stringList($0, key: from.path("principals"), of: "principals") }
                result.requestPrincipals = from["requestPrincipals"].map {
                    stringList($0, key: from.path("requestPrincipals"), of: "request principals")
                }
            }
            if let toNode = rule["to"], let to = self.fields(toNode, key: rule.path("to"), allowed: ["methods", "paths", "hosts"]) {
                result.methods = to["methods"].map { stringList($0, key: to.path("methods"), of: "methods").map { $0.uppercased() } }
                result.paths = to["paths"].map { stringList($0, key: to.path("paths"), of: "paths") }
                result.hosts = to["hosts"].map { stringList($0, key: to.path("hosts"), of: "hosts").map { $0.lowercased() } }
            }
            if let whenNode = rule["when"], let when = self.fields(whenNode, key: rule.path("when"), allowed: ["claims"]),
               let claimsNode = when["claims"],
               let claims = namedEntries(claimsNode, key: when.path("claims"), what: "claims") {
                for claim in claims {
                    let claimKey = Self.path(when.path("claims"), claim.name)
                    let values: [String]
                    if case .sequence = claim.value {
                        values = stringList(claim.value, key: claimKey, of: "claim values")
                    } else {
                        values = string(claim.value, key: claimKey, what: "a claim value or a list of them").map { [$0] } ?? []
                    }
                    result.claims.append(.init(name: claim.name, values: values))
                }
            }
            let states = result.principals != nil || result.requestPrincipals != nil || result.methods != nil
                || result.paths != nil || result.hosts != nil || !result.claims.isEmpty
            if !states {
                error("an empty rule would allow every request; say what it allows with 'from', 'to' or 'when'",
                      at: item, key: ruleKey)
            }
            rules.append(result)
        }
        guard diagnostics.count == errorsBefore else { return nil }
        return AuthorizationConfig(rules: rules)
    }

    private func stringList(_ node: Node, key: String, of what: String) -> [String] {
        guard let items = sequence(node, key: key, of: what) else { return [] }
        return items.enumerated().compactMap { index, item in
            nonEmptyString(item, key: Self.path(key, index: index), what: "a string")
        }
    }

    private func nonEmptyString(_ node: Node, key: String, what: String) -> String? {
        guard let value = string(node, key: key, what: what) else { return nil }
        guard !value.isEmpty else {
            error("expected \(what), got ''", at: node, key: key)
            return nil
        }
        return value
    }

    /// Headers that frame or route the request, or carry identity Portico sets itself: a jwt
    /// policy may not write them.
    private static let reservedHeaders: Set<String> = [
        "host", "content-length", "transfer-encoding", "connection", "upgrade", "te", "trailer", "keep-alive",
        "proxy-connection", "expect", "x-forwarded-client-cert", "x-forwarded-for", "x-forwarded-proto",
        "x-forwarded-host", "forwarded", "x-request-id", "authorization",
    ]

    /// A header a policy writes for the backend: a header name, and not a reserved one.
    private func outputHeaderName(_ node: Node, key: String) -> String? {
        guard let name = headerName(node, key: key) else { return nil }
        guard !Self.reservedHeaders.contains(name) else {
            error("'\(name)' is set by the gateway or frames the request; choose another header name", at: node, key: key)
            return nil
        }
        return name
    }

    /// A header name, lower-cased.
    private func headerName(_ node: Node, key: String) -> String? {
        guard let name = string(node, key: key, what: "a header name"), !name.isEmpty,
              name.utf8.allSatisfy({ $0 > 32 && $0 < 127 && $0 != UInt8(ascii: ":") }) else {
            error("expected a header name such as x-user\(Self.got(node))", at: node, key: key)
            return nil
        }
        return name.lowercased()
    }

    private func rateLimit(_ node: Node, key: String) -> RateLimitConfig? {
        guard let fields = fields(node, key: key, allowed: ["requests", "per", "burst", "key"]) else { return nil }
        let errorsBefore = diagnostics.count
        var requests: Int?
        if let requestsNode = fields["requests"] {
            requests = int(requestsNode, key: fields.path("requests"), in: 1...1_000_000_000,
                           rangeMessage: "must be at least 1")
        } else {
            requireKey("requests", in: fields, message: "a rate limit needs 'requests' (how many per 'per')")
        }
        var per = ConfigDuration.seconds(1)
        if let perNode = fields["per"], let value = duration(perNode, key: fields.path("per")) {
            if value > .seconds(86_400) {
                error("must be at most 24h, got \(value)", at: perNode, key: fields.path("per"))
            } else {
                per = value
            }
        }
        var burst: Int?
        if let burstNode = fields["burst"] {
            burst = int(burstNode, key: fields.path("burst"), in: 1...1_000_000_000, rangeMessage: "must be at least 1")
        }
        var limitKey = RateLimitConfig.Key.clientIP
        if let keyNode = fields["key"] {
            limitKey = rateLimitKey(keyNode, key: fields.path("key")) ?? .clientIP
        }
        guard diagnostics.count == errorsBefore, let requests else { return nil }
        return RateLimitConfig(requests: requests, per: per, burst: burst, key: limitKey)
    }

    /// `client_ip`, or `{ header: x-api-key }`.
    private func rateLimitKey(_ node: Node, key: String) -> RateLimitConfig.Key? {
        if case .scalar = node {
            return choice(node, key: key, [("client_ip", RateLimitConfig.Key.clientIP)])
        }
        guard let fields = fields(node, key: key, allowed: ["header"]) else { return nil }
        guard let headerNode = fields["header"] else {
            requireKey("header", in: fields)
            return nil
        }
        guard let name = string(headerNode, key: fields.path("header"), what: "a header name"), !name.isEmpty,
              name.utf8.allSatisfy({ $0 > 32 && $0 < 127 && $0 != UInt8(ascii: ":") }) else {
            error("expected a header name such as x-api-key\(Self.got(headerNode))", at: headerNode, key: fields.path("header"))
            return nil
        }
        return .header(name.lowercased())
    }

    /// `policies: [a, b]` on a route or listener: each must name a policy of `policies:`.
    func policyNames(_ node: Node, key: String, known: [PolicyConfig]) -> [String] {
        guard let items = sequence(node, key: key, of: "policy names") else { return [] }
        var names: [String] = []
        for (index, item) in items.enumerated() {
            let itemKey = Self.path(key, index: index)
            guard let name = string(item, key: itemKey, what: "a policy name") else { continue }
            guard known.contains(where: { $0.name == name }) else {
                var message = "unknown policy '\(name)'"
                if let suggestion = KeySuggestion.closest(to: name, among: known.map(\.name)) {
                    message += " (did you mean '\(suggestion)'?)"
                } else if known.isEmpty {
                    message += " (the top-level 'policies:' section declares none)"
                }
                error(message, at: item, key: itemKey)
                continue
            }
            if !names.contains(name) { names.append(name) }
        }
        return names
    }

    /// `fault: { abort: { percent, status }, delay: { percent, duration } }`.
    func fault(_ node: Node, key: String) -> FaultConfig? {
        guard let fields = fields(node, key: key, allowed: ["abort", "delay"]) else { return nil }
        var fault = FaultConfig()
        if let abortNode = fields["abort"], let abort = self.fields(abortNode, key: fields.path("abort"), allowed: ["percent", "status"]) {
            let percent = abort["percent"].flatMap { percentage($0, key: abort.path("percent")) }
            var status: Int?
            if let statusNode = abort["status"] {
                status = int(statusNode, key: abort.path("status"), in: 200...599, rangeMessage: "must be an HTTP status from 200 to 599")
            } else {
                requireKey("status", in: abort)
            }
            if abort["percent"] == nil { requireKey("percent", in: abort) }
            if let percent, let status { fault.abort = .init(percent: percent, status: status) }
        }
        if let delayNode = fields["delay"], let delay = self.fields(delayNode, key: fields.path("delay"), allowed: ["percent", "duration"]) {
            let percent = delay["percent"].flatMap { percentage($0, key: delay.path("percent")) }
            var duration: ConfigDuration?
            if let durationNode = delay["duration"] {
                duration = self.duration(durationNode, key: delay.path("duration"), allowZero: true)
            } else {
                requireKey("duration", in: delay)
            }
            if delay["percent"] == nil { requireKey("percent", in: delay) }
            if let percent, let duration { fault.delay = .init(percent: percent, duration: duration) }
        }
        return fault
    }

    /// A number from 0 to 100, fractions allowed (`0.5`).
    func percentage(_ node: Node, key: String) -> Double? {
        guard case .scalar(let scalar) = node, let value = Double(scalar.string), value.isFinite,
              scalar.string.allSatisfy({ $0.isASCII && ($0.isNumber || $0 == ".") }) else {
            error("expected a percentage from 0 to 100\(Self.got(node))", at: node, key: key)
            return nil
        }
        guard value <= 100 else {
            error("must be from 0 to 100, got \(scalar.string)", at: node, key: key)
            return nil
        }
        return value
    }

    /// `retries: { attempts, perTryTimeout, retryOn, replayBuffer }`.
    func retries(_ node: Node, key: String) -> RetryConfig? {
        guard let fields = fields(node, key: key, allowed: ["attempts", "perTryTimeout", "retryOn", "replayBuffer"]) else {
            return nil
        }
        let errorsBefore = diagnostics.count
        var config = RetryConfig(attempts: 0)
        if let attemptsNode = fields["attempts"] {
            config.attempts = int(attemptsNode, key: fields.path("attempts"), in: 0...10,
                                  rangeMessage: "must be from 0 to 10 (retries after the first try)") ?? 0
        } else {
            requireKey("attempts", in: fields, message: "retries need 'attempts' (how many retries after the first try)")
        }
        if let node = fields["perTryTimeout"] {
            config.perTryTimeout = duration(node, key: fields.path("perTryTimeout"))
        }
        if let node = fields["retryOn"], let items = sequence(node, key: fields.path("retryOn"), of: "retry conditions") {
            let options = RetryConfig.Condition.allCases.map { ($0.rawValue, $0) }
            config.retryOn = items.enumerated().compactMap { index, item in
                choice(item, key: Self.path(fields.path("retryOn"), index: index), options)
            }
        }
        if let node = fields["replayBuffer"], let value = size(node, key: fields.path("replayBuffer")) {
            config.replayBuffer = value
        }
        return diagnostics.count == errorsBefore ? config : nil
    }
}
