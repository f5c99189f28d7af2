import Yams

extension ConfigReader {
    static let matchKeys = ["host", "prefix", "path", "regex", "headers", "methods", "grpc"]

    /// A route's `match:`; every condition given must hold. An empty `match: {}` matches all.
    func routeMatch(_ node: Node, key: String) -> RouteMatch? {
        guard let fields = fields(node, key: key, allowed: Self.matchKeys) else { return nil }
        return routeMatch(fields)
    }

    /// The match keys of a mapping that may hold other keys too: a function's route item puts
    /// `rewrite` beside them, so the caller checks the allowed keys and this reads only these.
    func routeMatch(_ fields: Fields) -> RouteMatch? {
        let errorsBefore = diagnostics.count
        var match = RouteMatch()

        if let hostNode = fields["host"], let host = hostMatch(hostNode, key: fields.path("host")) {
            match.host = host
        }
        if let path = pathMatch(fields) {
            match.path = path
        }
        if let grpcNode = fields["grpc"] {
            if let path = grpcMatch(grpcNode, key: fields.path("grpc")) {
                if let other = ["prefix", "path", "regex"].first(where: { fields[$0] != nil }) {
                    error("'grpc' already matches the path (/service/method); drop '\(other)'",
                          at: fields.keyNode(other), key: fields.path(other))
                }
                match.path = path
            }
            match.grpc = true
        }
        if let headersNode = fields["headers"] {
            match.headers = headerMatches(headersNode, key: fields.path("headers"))
        }
        if let methodsNode = fields["methods"] {
            match.methods = methods(methodsNode, key: fields.path("methods"))
        }
        return diagnostics.count == errorsBefore ? match : nil
    }

    /// `grpc: { service, method }`: a gRPC call's path is `/package.Service/Method` (the gRPC
    /// HTTP/2 protocol), so a service matches a prefix and a method the whole path. `grpc: {}`
    /// matches any gRPC call. Names are checked against the protobuf identifier rules, so a
    /// typo with a slash or a space is an error here rather than a route that never matches.
    private func grpcMatch(_ node: Node, key: String) -> PathMatch? {
        guard let fields = fields(node, key: key, allowed: ["service", "method"]) else { return nil }
        func name(_ field: String, allowsDots: Bool) -> String? {
            guard let valueNode = fields[field] else { return nil }
            let what = allowsDots ? "a fully qualified service name such as helloworld.Greeter" : "a method name such as SayHello"
            guard let value = string(valueNode, key: fields.path(field), what: what) else { return nil }
            let valid = !value.isEmpty && !value.hasPrefix(".") && !value.hasSuffix(".") && !value.contains("..")
                && value.utf8.allSatisfy { byte in
                    (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
                        || byte == UInt8(ascii: "_") || (allowsDots && byte == UInt8(ascii: "."))
                }
            guard valid else {
                error("expected \(what), got '\(value)'", at: valueNode, key: fields.path(field))
                return nil
            }
            return value
        }
        let service = name("service", allowsDots: true)
        let method = name("method", allowsDots: false)
        if fields["method"] != nil && fields["service"] == nil {
            error("a gRPC method is matched within its service; add 'service'", at: fields.keyNode("method"),
                  key: fields.path("method"))
            return nil
        }
        guard let service else { return fields["service"] == nil ? .any : nil }
        if let method { return .exact("/\(service)/\(method)") }
        return fields["method"] == nil ? .prefix("/\(service)/") : nil
    }

    /// `prefix`, `path` or `regex`, at most one: with two, which one wins would be a guess.
    private func pathMatch(_ fields: Fields) -> PathMatch? {
        let given = fields.entries.filter { ["prefix", "path", "regex"].contains($0.name) }
        for extra in given.dropFirst() {
            error("only one of prefix, path, regex may be set; this match already has '\(given[0].name)'",
                  at: extra.key, key: fields.path(extra.name))
        }
        guard let first = given.first else { return nil }
        let key = fields.path(first.name)
        switch first.name {
        case "prefix":
            return urlPath(first.value, key: key).map(PathMatch.prefix)
        case "path":
            return urlPath(first.value, key: key).map(PathMatch.exact)
        default:
            guard let pattern = string(first.value, key: key, what: "a regular expression") else { return nil }
            do {
                // Compiled here only to reject it early; routing compiles its own copy, since a
                // `Regex` is not `Sendable` data a config snapshot can carry.
                _ = try Regex(pattern)
            } catch {
                self.error("invalid regular expression: \(error)", at: first.value, key: key)
                return nil
            }
            return .regex(pattern)
        }
    }

    /// `api.example.com` or `*.example.com`, compared lowercased because host names are
    /// case-insensitive. A port is refused: the gateway matches the name whatever port the
    /// client used, so `host: api.example.com:8080` would never mean what it says.
    private func hostMatch(_ node: Node, key: String) -> HostMatch? {
        guard let raw = string(node, key: key, what: "a host name") else { return nil }
        let host = raw.lowercased()
        let isBracketedIPv6 = host.hasPrefix("[") && host.hasSuffix("]")
        if host.contains(":") && !isBracketedIPv6 {
            error("must not include a port; routes match the host name whatever the port, got '\(raw)'",
                  at: node, key: key)
            return nil
        }
        if isBracketedIPv6 { return .exact(host) }

        var name = Substring(host)
        let isWildcard = name.hasPrefix("*.")
        if isWildcard { name = name.dropFirst(2) }
        guard !name.isEmpty, name.allSatisfy(HostPort.isHostNameCharacter) else {
            let hint = host.contains("*") ? "only a leading '*.' wildcard is supported, as in *.example.com"
                                          : "expected a host name such as api.example.com or *.example.com"
            error("\(hint), got '\(raw)'", at: node, key: key)
            return nil
        }
        return isWildcard ? .suffix(String(host.dropFirst())) : .exact(host)
    }

    /// `headers:` — `name: value` (exact), `name: { exact: v }` or `name: { present: bool }`.
    private func headerMatches(_ node: Node, key: String) -> [HeaderMatch] {
        guard let entries = namedEntries(node, key: key, what: "header") else { return [] }
        var result: [HeaderMatch] = []
        for entry in entries {
            let name = entry.name.lowercased()
            let headerPath = Self.path(key, entry.name)
            guard Self.isToken(name) else {
                error("'\(entry.name)' is not a valid header name", at: entry.key, key: headerPath)
                continue
            }
            // HTTP header names are case-insensitive, so X-Debug and x-debug are the same header.
            if result.contains(where: { $0.name == name }) {
                error("header '\(name)' is matched twice", at: entry.key, key: headerPath)
                continue
            }
            if case .mapping = entry.value {
                guard let fields = fields(entry.value, key: headerPath, allowed: ["exact", "present"]) else { continue }
                let given = fields.entries
                guard given.count == 1 else {
                    error("expected exactly one of exact, present", at: entry.value, key: headerPath)
                    continue
                }
                if given[0].name == "present" {
                    if let present = bool(given[0].value, key: fields.path("present")) {
                        result.append(HeaderMatch(name: name, kind: .present(present)))
                    }
                } else if let value = string(given[0].value, key: fields.path("exact"), what: "a header value") {
                    result.append(HeaderMatch(name: name, kind: .exact(value)))
                }
            } else if let value = string(entry.value, key: headerPath,
                                         what: "a header value, { exact: value } or { present: true }") {
                result.append(HeaderMatch(name: name, kind: .exact(value)))
            }
        }
        return result
    }

    /// `methods:` — upper-cased (methods are case-sensitive on the wire and every client sends
    /// them in capitals); repeats are dropped.
    private func methods(_ node: Node, key: String) -> [String] {
        guard let items = sequence(node, key: key, of: "methods such as [GET, HEAD]") else { return [] }
        var result: [String] = []
        for (index, item) in items.enumerated() {
            let itemPath = Self.path(key, index: index)
            guard let raw = string(item, key: itemPath, what: "a method such as GET") else { continue }
            let method = raw.uppercased()
            guard Self.isToken(method) else {
                error("'\(raw)' is not a valid HTTP method", at: item, key: itemPath)
                continue
            }
            if !result.contains(method) { result.append(method) }
        }
        return result
    }

    /// RFC 9110 `token`: the grammar of header names and methods.
    static func isToken(_ s: String) -> Bool {
        !s.isEmpty && s.unicodeScalars.allSatisfy { scalar in
            scalar.isASCII && (("a"..."z").contains(scalar) || ("A"..."Z").contains(scalar)
                || ("0"..."9").contains(scalar) || "!#$%&'*+-.^_`|~".unicodeScalars.contains(scalar))
        }
    }
}
