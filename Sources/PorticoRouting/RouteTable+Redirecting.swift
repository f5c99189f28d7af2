import PorticoConfig

extension RouteTable {
    /// The absolute URL for the `Location` header of a redirect route.
    ///
    /// Each part the redirect sets replaces that part of the request URL; the rest is kept.
    /// The port is written only when it is not the default for the resulting scheme; a redirect
    /// to another host keeps the request's port only when `port` says so.
    ///
    /// - Parameters:
    ///   - scheme: the scheme the request arrived on (`http` or `https`).
    ///   - authority: the request's `Host` / `:authority`, possibly with a port.
    public func redirectLocation(
        _ redirect: RedirectConfig,
        matched: MatchedRoute,
        scheme: String,
        authority: String,
        normalizedPath: String,
        query: String?
    ) -> String {
        let requestScheme = scheme.lowercased()
        let targetScheme = redirect.scheme?.lowercased() ?? requestScheme
        let (requestHost, requestPort) = HostName.split(authority: authority)

        var host = redirect.host ?? String(requestHost)
        // An IPv6 literal from the config needs its brackets back in a URL.
        if host.first != "[" && host.utf8.filter({ $0 == ASCII.colon }).count > 1 {
            host = "[" + host + "]"
        }

        let port: String?
        if let configured = redirect.port {
            port = String(configured)
        } else if redirect.host != nil {
            // Another host is another server: the port the request reached this one on says
            // nothing about where that one listens.
            port = nil
        } else if let requestPort, !requestPort.isEmpty {
            // `http://host:80` redirected to https must not become `https://host:80`: the old
            // default port says nothing about the new scheme.
            let requestPort = String(requestPort)
            let isOldDefault = targetScheme != requestScheme && requestPort == Self.defaultPort(of: requestScheme)
            port = isOldDefault ? nil : requestPort
        } else {
            port = nil
        }

        let path: String
        if let replacement = redirect.path {
            path = replacement.isEmpty ? "/" : replacement
        } else if let replacement = redirect.prefix, let prefix = matched.matchedPrefix {
            path = Self.replacePrefix(of: normalizedPath, matched: prefix, with: replacement)
        } else {
            // `prefix` means nothing without a matched prefix; the loader reports that case.
            path = normalizedPath
        }

        var location = targetScheme
        location.append("://")
        location.append(contentsOf: host)
        if let port, port != Self.defaultPort(of: targetScheme) {
            location.append(":")
            location.append(port)
        }
        location.append(path)
        if !redirect.stripQuery, let query {
            location.append("?")
            location.append(query)
        }
        return location
    }

    static func defaultPort(of scheme: String) -> String? {
        switch scheme {
        case "http": return "80"
        case "https": return "443"
        default: return nil
        }
    }
}
