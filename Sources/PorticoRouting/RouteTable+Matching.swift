import PorticoConfig

extension RouteTable {
    /// The first route, in config order, whose every condition holds for `request`.
    ///
    /// A later, more specific route never wins over an earlier one: order is the whole
    /// precedence rule, which is what `portico routes` and `shadowedRoutes()` explain.
    public func match<R: RoutableRequest>(_ request: R) -> MatchedRoute? {
        var authority = request.authority
        let path = request.normalizedPath
        var pathStorage = path  // shares `path`'s buffer; `withUTF8` needs a var
        let method = request.method
        // The host and path bytes are found once, not once per route.
        return authority.withUTF8 { authorityBytes in
            let host = HostName.host(in: authorityBytes)
            return pathStorage.withUTF8 { pathBytes in
                for route in routes
                where route.matches(method: method, host: host, pathBytes: pathBytes, path: path, request: request) {
                    return MatchedRoute(route: route)
                }
                return nil
            }
        }
    }
}

extension CompiledRoute {
    /// Cheap conditions first; the regex, the only costly one, last.
    func matches<R: RoutableRequest>(
        method: String,
        host: UnsafeBufferPointer<UInt8>,
        pathBytes: UnsafeBufferPointer<UInt8>,
        path: String,
        request: R
    ) -> Bool {
        let methods = config.match.methods
        if !methods.isEmpty && !methods.contains(method) { return false }

        switch self.host {
        case nil: break
        case .exact(let name): if !HostName.equals(host, canonical: name) { return false }
        case .suffix(let suffix): if !HostName.hasSuffix(host, canonicalSuffix: suffix) { return false }
        }

        switch self.path {
        case .any, .regex: break
        case .prefix(let prefix): if !pathBytes.starts(with: prefix) { return false }
        case .exact(let exact): if !pathBytes.elementsEqual(exact) { return false }
        }

        for header in config.match.headers {
            let value = request.firstHeaderValue(lowercasedName: header.name)
            switch header.kind {
            case .present(let required):
                if (value != nil) != required { return false }
            case .exact(let expected):
                // Byte comparison: `String ==` would call "é" and "e\u{301}" equal.
                guard let value, value.utf8.elementsEqual(expected.utf8) else { return false }
            }
        }

        if config.match.grpc {
            // A browser's CORS preflight for a gRPC-Web call carries no content type: it asks
            // about the call that follows on the same path, and matches where that call will.
            let isPreflight = method == "OPTIONS" && request.firstHeaderValue(lowercasedName: "access-control-request-method") != nil
            if !isPreflight {
                guard let contentType = request.firstHeaderValue(lowercasedName: "content-type"),
                      GRPCContentType.isGRPC(contentType) else { return false }
            }
        }

        if case .regex(let regex) = self.path {
            guard regex.matchesWhole(path) else { return false }
        }
        return true
    }
}
