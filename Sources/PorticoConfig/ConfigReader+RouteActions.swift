import Yams

extension ConfigReader {
    static let redirectStatuses = [301, 302, 303, 307, 308]
    /// Keeps the sum of a split's weights far from overflow whatever the number of entries.
    static let maxSplitWeight = 1_000_000

    /// The route's one action. Every action key present is still read, so its own mistakes are
    /// reported alongside the "more than one action" error.
    /// A split's `stickyOn`, when it has one, comes back in `splitStickyOn`.
    func routeAction(_ fields: Fields, routeName: String, pathMatch: PathMatch?, serviceNames: [String],
                     splitStickyOn: inout SplitStickiness?) -> RouteAction? {
        let given = fields.entries.filter { Self.actionKeys.contains($0.name) }
        let choices = "service, function, split, directResponse or redirect"
        if given.isEmpty {
            error("route '\(routeName)' has no action; give it exactly one of \(choices)", at: fields.node, key: fields.path)
        } else if given.count > 1 {
            let names = given.map { "'\($0.name)'" }.joined(separator: " and ")
            error("route '\(routeName)' has more than one action (\(names)); give it exactly one of \(choices)",
                  at: fields.node, key: fields.path)
        }

        var actions: [RouteAction] = []
        for entry in given {
            let key = fields.path(entry.name)
            let action: RouteAction?
            switch entry.name {
            case "service":
                action = serviceReference(entry.value, key: key, serviceNames: serviceNames).map(RouteAction.service)
            case "function":
                action = functionReference(entry.value, key: key).map(RouteAction.function)
            case "split":
                action = split(entry.value, key: key, serviceNames: serviceNames, stickyOn: &splitStickyOn).map(RouteAction.split)
            case "directResponse":
                action = directResponse(entry.value, key: key).map(RouteAction.directResponse)
            default:
                action = redirect(entry.value, key: key, pathMatch: pathMatch).map(RouteAction.redirect)
            }
            if let action { actions.append(action) }
        }
        return given.count == 1 ? actions.first : nil
    }

    /// `mirror: { service, percent }`.
    func mirror(_ node: Node, key: String, serviceNames: [String]) -> MirrorConfig? {
        guard let fields = fields(node, key: key, allowed: ["service", "percent"]) else { return nil }
        guard let serviceNode = fields["service"] else {
            requireKey("service", in: fields, message: "a mirror needs 'service' (where the copies go)")
            return nil
        }
        guard let service = serviceReference(serviceNode, key: fields.path("service"), serviceNames: serviceNames) else { return nil }
        var config = MirrorConfig(service: service)
        if let percentNode = fields["percent"] {
            guard let percent = percentage(percentNode, key: fields.path("percent")) else { return nil }
            config.percent = percent
        }
        return config
    }

    /// A service name that must be declared under `services:`.
    func serviceReference(_ node: Node, key: String, serviceNames: [String]) -> String? {
        guard let name = string(node, key: key, what: "a service name") else { return nil }
        guard serviceNames.contains(name) else {
            var message = "unknown service '\(name)'"
            if let suggestion = KeySuggestion.closest(to: name, among: serviceNames) {
                message += " (did you mean '\(suggestion)'?)"
            } else if serviceNames.isEmpty {
                message += " (no services are declared under 'services')"
            } else {
                message += " (declared: \(Self.list(serviceNames)))"
            }
            error(message, at: node, key: key)
            return nil
        }
        return name
    }

    /// A function's name. Only its spelling is checked: functions are discovered from the
    /// functions folder at run time, so the one named may be deployed after the gateway starts.
    private func functionReference(_ node: Node, key: String) -> String? {
        guard let name = string(node, key: key, what: "a function name") else { return nil }
        if let problem = FunctionManifest.nameProblem(name) {
            error(problem, at: node, key: key)
            return nil
        }
        return name
    }

    /// `split:` — weighted services and functions; a request goes to one with probability
    /// weight / total. Either the list itself, or `{ backends: [list], stickyOn: {...} }`.
    private func split(_ node: Node, key: String, serviceNames: [String], stickyOn: inout SplitStickiness?) -> [WeightedBackend]? {
        let entryShape = "{ service, weight } or { function, weight }"
        var node = node, key = key
        if case .mapping = node {
            guard let fields = fields(node, key: key, allowed: ["backends", "stickyOn"]) else { return nil }
            if let stickyNode = fields["stickyOn"] {
                stickyOn = splitStickiness(stickyNode, key: fields.path("stickyOn"))
            }
            guard let backendsNode = fields["backends"] else {
                requireKey("backends", in: fields, message: "a split written as a mapping needs 'backends', the list of \(entryShape)")
                return nil
            }
            node = backendsNode
            key = fields.path("backends")
        }
        guard let items = sequence(node, key: key, of: "\(entryShape) entries") else { return nil }
        guard !items.isEmpty else {
            error("a split needs at least one \(entryShape) entry", at: node, key: key)
            return nil
        }
        let errorsBefore = diagnostics.count
        var result: [WeightedBackend] = []
        var backendsSeen: Set<BackendReference> = []
        for (index, item) in items.enumerated() {
            let itemPath = Self.path(key, index: index)
            guard let fields = fields(item, key: itemPath, allowed: ["service", "function", "weight"]) else { continue }
            var backend: BackendReference?, weight: Int?
            let targets = fields.entries.filter { $0.name == "service" || $0.name == "function" }
            if targets.isEmpty {
                requireKey("service", in: fields, message: "a split entry needs a 'service' or a 'function'")
            } else if targets.count > 1 {
                error("a split entry goes to one backend; set either 'service' or 'function', not both",
                      at: targets[1].key, key: fields.path(targets[1].name))
            } else {
                let target = targets[0]
                let targetPath = fields.path(target.name)
                if target.name == "service" {
                    backend = serviceReference(target.value, key: targetPath, serviceNames: serviceNames).map(BackendReference.service)
                } else {
                    backend = functionReference(target.value, key: targetPath).map(BackendReference.function)
                }
                if let backend, !backendsSeen.insert(backend).inserted {
                    error("\(target.name) '\(backend.name)' appears twice in this split; add the weights into one entry",
                          at: target.value, key: targetPath)
                }
            }
            if let weightNode = fields["weight"] {
                weight = int(weightNode, key: fields.path("weight"), in: 1...Self.maxSplitWeight,
                             rangeMessage: "must be a positive whole number up to \(Self.maxSplitWeight)")
            } else {
                requireKey("weight", in: fields)
            }
            if let backend, let weight {
                result.append(WeightedBackend(backend: backend, weight: weight))
            }
        }
        return diagnostics.count == errorsBefore ? result : nil
    }

    /// `stickyOn: { header: NAME }` or `stickyOn: { cookie: NAME }`.
    private func splitStickiness(_ node: Node, key: String) -> SplitStickiness? {
        guard let fields = fields(node, key: key, allowed: ["header", "cookie"]) else { return nil }
        guard fields.entries.count == 1, let entry = fields.entries.first else {
            if fields.entries.isEmpty {
                error("stickyOn needs 'header' or 'cookie': where the value that keeps a client on one side is", at: node, key: key)
            } else {
                error("stickyOn takes one of 'header' or 'cookie', not both", at: fields.entries[1].key, key: fields.path(fields.entries[1].name))
            }
            return nil
        }
        let what = entry.name == "header" ? "a header name such as x-user" : "a cookie name such as session"
        // Both are RFC 9110 tokens (a cookie name is one by RFC 6265 4.1.1).
        guard let name = string(entry.value, key: fields.path(entry.name), what: what) else { return nil }
        guard !name.isEmpty, name.utf8.allSatisfy(Self.isTokenCharacter) else {
            error("expected \(what)\(Self.got(entry.value))", at: entry.value, key: fields.path(entry.name))
            return nil
        }
        return entry.name == "header" ? .header(name.lowercased()) : .cookie(name)
    }

    private static func isTokenCharacter(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"):
            return true
        default:
            return "!#$%&'*+-.^_`|~".utf8.contains(byte)
        }
    }

    /// `directResponse:` — the gateway answers itself. 1xx is refused: it is not a final response.
    private func directResponse(_ node: Node, key: String) -> DirectResponseConfig? {
        guard let fields = fields(node, key: key, allowed: ["status", "body", "contentType"]) else { return nil }
        let errorsBefore = diagnostics.count
        var status: Int?
        if let statusNode = fields["status"] {
            status = int(statusNode, key: fields.path("status"), in: 200...599, rangeMessage: "must be between 200 and 599")
        } else {
            requireKey("status", in: fields)
        }
        var response = DirectResponseConfig(status: status ?? 200)
        if let bodyNode = fields["body"] {
            // An explicit empty value (`body:`) means an empty body, the same as leaving it out.
            if isNull(bodyNode) {
                response.body = ""
            } else if let body = string(bodyNode, key: fields.path("body")) {
                response.body = body
            }
        }
        if let typeNode = fields["contentType"], let contentType = string(typeNode, key: fields.path("contentType"), what: "a media type") {
            if contentType.isEmpty || contentType.contains(where: { $0 == "\r" || $0 == "\n" }) {
                error("expected a media type such as application/json, got '\(contentType)'",
                      at: typeNode, key: fields.path("contentType"))
            } else {
                response.contentType = contentType
            }
        }
        return diagnostics.count == errorsBefore ? response : nil
    }

    /// `redirect:` — each part given replaces that part of the request URL.
    private func redirect(_ node: Node, key: String, pathMatch: PathMatch?) -> RedirectConfig? {
        let allowed = ["scheme", "host", "port", "path", "prefix", "status", "stripQuery"]
        guard let fields = fields(node, key: key, allowed: allowed) else { return nil }
        let errorsBefore = diagnostics.count
        var redirect = RedirectConfig()

        if let schemeNode = fields["scheme"] {
            redirect.scheme = choice(schemeNode, key: fields.path("scheme"), [("http", "http"), ("https", "https")])
        }
        if let hostNode = fields["host"], let host = string(hostNode, key: fields.path("host"), what: "a host name") {
            if host.contains(":") {
                error("must not include a port; set 'port' instead, got '\(host)'", at: hostNode, key: fields.path("host"))
            } else if host.isEmpty || !host.allSatisfy(HostPort.isHostNameCharacter) {
                error("expected a host name such as new.example.com, got '\(host)'", at: hostNode, key: fields.path("host"))
            } else {
                redirect.host = host
            }
        }
        if let portNode = fields["port"] {
            redirect.port = int(portNode, key: fields.path("port"), in: 1...65535, rangeMessage: "must be between 1 and 65535")
        }
        if let pathNode = fields["path"] {
            redirect.path = urlPath(pathNode, key: fields.path("path"))
        }
        if let prefixNode = fields["prefix"] {
            if fields.has("path") {
                error("set either 'path' (replaces the whole path) or 'prefix' (replaces the matched prefix), not both",
                      at: fields.keyNode("prefix"), key: fields.path("prefix"))
            } else if let pathMatch, !Self.isPrefix(pathMatch) {
                error("'prefix' needs a route that matches on a prefix; use 'path' to replace the whole path",
                      at: fields.keyNode("prefix"), key: fields.path("prefix"))
            }
            redirect.prefix = urlPath(prefixNode, key: fields.path("prefix"))
        }
        if let statusNode = fields["status"],
           let status = int(statusNode, key: fields.path("status"), in: 300...308, rangeMessage: "must be 301, 302, 303, 307 or 308") {
            if Self.redirectStatuses.contains(status) {
                redirect.status = status
            } else {
                error("must be 301, 302, 303, 307 or 308, got \(status)", at: statusNode, key: fields.path("status"))
            }
        }
        if let stripNode = fields["stripQuery"], let strip = bool(stripNode, key: fields.path("stripQuery")) {
            redirect.stripQuery = strip
        }

        let changesSomething = ["scheme", "host", "port", "path", "prefix"].contains(where: fields.has) || redirect.stripQuery
        if !changesSomething && diagnostics.count == errorsBefore {
            error("a redirect must set at least one of scheme, host, port, path, prefix, stripQuery; otherwise it sends the client back to the same URL",
                  at: node, key: key)
        }
        return diagnostics.count == errorsBefore ? redirect : nil
    }

    private static func isPrefix(_ path: PathMatch) -> Bool {
        if case .prefix = path { return true }
        return false
    }
}
