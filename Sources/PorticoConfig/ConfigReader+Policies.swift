import Yams

extension ConfigReader {
    static let policyKinds = ["rateLimit"]

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
            default:
                break
            }
        }
        return result
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
    private func percentage(_ node: Node, key: String) -> Double? {
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
