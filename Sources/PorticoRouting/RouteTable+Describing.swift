import PorticoConfig

extension RouteTable {
    /// One line per route, in match order, for `portico routes`:
    ///
    ///     0  v1      host=api.example.com prefix=/v1/ methods=GET,HEAD  -> service legacy          timeout=10s rewrite=/
    ///     1  canary  prefix=/ headers=x-canary=true                     -> split new:90 legacy:10  timeout=15s
    ///     2  old     prefix=/old/                                       -> redirect 308 scheme=https
    ///
    /// Columns are padded to line up; a header condition reads `name=value`, `name` (present)
    /// or `!name` (absent); a route with no condition reads `any`.
    public func describe() -> [String] {
        let rows = routes.map { route in
            [String(route.index), route.config.name, Self.describeMatch(route.config.match),
             "-> " + Self.describeAction(route.config.action), Self.describeExtras(route.config)]
        }
        guard let columnCount = rows.first?.count else { return [] }
        // Every column but the last is padded to line up. The action column is sized only by
        // rows that have something after it, so one long redirect does not push every
        // `timeout=` far to the right.
        let actionColumn = columnCount - 2
        let widths = (0..<columnCount - 1).map { column in
            rows.filter { column != actionColumn || !$0[columnCount - 1].isEmpty }.map { $0[column].count }.max() ?? 0
        }
        return rows.map { row in
            var line = ""
            for (column, cell) in row.enumerated() {
                if column > 0 { line += "  " }
                line += cell
                if column < widths.count && cell.count < widths[column] {
                    line += String(repeating: " ", count: widths[column] - cell.count)
                }
            }
            while line.last == " " { line.removeLast() }
            return line
        }
    }

    /// A route's conditions as one cell of `describe()`: `host=... prefix=... headers=...`.
    public static func describeMatch(_ match: RouteMatch) -> String {
        var parts: [String] = []
        switch match.host {
        case nil: break
        case .exact(let host): parts.append("host=\(host)")
        case .suffix(let suffix): parts.append("host=*\(suffix.hasPrefix(".") ? suffix : "." + suffix)")
        }
        switch match.path {
        case .any: break
        case .prefix(let prefix): parts.append("prefix=\(prefix)")
        case .exact(let path): parts.append("path=\(path)")
        case .regex(let pattern): parts.append("regex=\(pattern)")
        }
        if !match.headers.isEmpty {
            let headers = match.headers.map { header -> String in
                switch header.kind {
                case .exact(let value): return "\(header.name)=\(value)"
                case .present(true): return header.name
                case .present(false): return "!\(header.name)"
                }
            }
            parts.append("headers=" + headers.joined(separator: ","))
        }
        if !match.methods.isEmpty {
            parts.append("methods=" + match.methods.joined(separator: ","))
        }
        if match.grpc { parts.append("grpc") }
        return parts.isEmpty ? "any" : parts.joined(separator: " ")
    }

    static func describeAction(_ action: RouteAction) -> String {
        switch action {
        case .service(let name):
            return "service \(name)"
        case .function(let name):
            return "function \(name)"
        case .split(let backends):
            return "split " + backends.map { "\($0.backend):\($0.weight)" }.joined(separator: " ")
        case .directResponse(let response):
            return "direct \(response.status)"
        case .redirect(let redirect):
            var parts = ["redirect \(redirect.status)"]
            if let scheme = redirect.scheme { parts.append("scheme=\(scheme)") }
            if let host = redirect.host { parts.append("host=\(host)") }
            if let port = redirect.port { parts.append("port=\(port)") }
            if let path = redirect.path { parts.append("path=\(path)") }
            if let prefix = redirect.prefix { parts.append("prefix=\(prefix)") }
            if redirect.stripQuery { parts.append("strip-query") }
            return parts.joined(separator: " ")
        }
    }

    /// Timeout and rewrites only mean something when the request goes upstream.
    static func describeExtras(_ route: RouteConfig) -> String {
        switch route.action {
        case .directResponse, .redirect:
            return ""
        case .service, .function, .split:
            var parts = ["timeout=\(route.timeout)"]
            if let prefix = route.rewrite?.prefix { parts.append("rewrite=\(prefix)") }
            if let host = route.rewrite?.host { parts.append("host-rewrite=\(host)") }
            switch route.splitStickyOn {
            case .header(let name)?: parts.append("sticky-header=\(name)")
            case .cookie(let name)?: parts.append("sticky-cookie=\(name)")
            case nil: break
            }
            return parts.joined(separator: " ")
        }
    }
}
