import PorticoConfig

extension RouteTable {
    /// The walk `match` makes, route by route, saying for each route why it did or did not
    /// take `request`; the routes after the winner are judged too, so a route that would have
    /// matched but comes too late can say which route shadows it.
    ///
    /// A separate walk from `match`, which stays a plain loop of `Bool` checks: this one builds
    /// strings, and runs only when someone asks (`portico explain`, admin `POST /explain`). It
    /// checks the same compiled conditions, in the same order, as `CompiledRoute.matches`.
    public func explain<R: RoutableRequest>(_ request: R) -> RouteTrace {
        var authority = request.authority
        var pathStorage = request.normalizedPath
        let path = request.normalizedPath
        let method = request.method
        let shadows = Dictionary(shadowedRoutes().map { ($0.shadowed, $0.by) }, uniquingKeysWith: { first, _ in first })
        return authority.withUTF8 { authorityBytes in
            let host = HostName.host(in: authorityBytes)
            return pathStorage.withUTF8 { pathBytes in
                var trials: [RouteTrace.Trial] = []
                trials.reserveCapacity(routes.count)
                var matched: MatchedRoute?
                for route in routes {
                    let mismatch = route.firstMismatch(method: method, host: host, pathBytes: pathBytes, path: path, request: request)
                    let outcome: RouteTrace.Trial.Outcome
                    if matched != nil {
                        outcome = .notReached(wouldMatch: mismatch == nil)
                    } else if let mismatch {
                        outcome = .failed(mismatch)
                    } else {
                        outcome = .matched
                        matched = MatchedRoute(route: route)
                    }
                    trials.append(RouteTrace.Trial(route: route, outcome: outcome, shadowedBy: shadows[route.index].map { routes[$0] }))
                }
                return RouteTrace(trials: trials, matched: matched)
            }
        }
    }
}

extension CompiledRoute {
    /// The first condition of this route that `request` fails, checked in the order `matches`
    /// checks them; nil when every condition holds.
    func firstMismatch<R: RoutableRequest>(
        method: String,
        host: UnsafeBufferPointer<UInt8>,
        pathBytes: UnsafeBufferPointer<UInt8>,
        path: String,
        request: R
    ) -> RouteMismatch? {
        let methods = config.match.methods
        if !methods.isEmpty && !methods.contains(method) { return .method(allowed: methods, got: method) }

        let hostText = String(decoding: host, as: UTF8.self)
        switch self.host {
        case nil: break
        case .exact(let name):
            if !HostName.equals(host, canonical: name) { return .host(wanted: String(decoding: name, as: UTF8.self), got: hostText) }
        case .suffix(let suffix):
            if !HostName.hasSuffix(host, canonicalSuffix: suffix) {
                return .host(wanted: "*" + String(decoding: suffix, as: UTF8.self), got: hostText)
            }
        }

        // A gRPC route's path is its service (a prefix) or its method (an exact path).
        let grpc = config.match.grpc
        switch self.path {
        case .any, .regex: break
        case .prefix(let prefix):
            if !pathBytes.starts(with: prefix) {
                let text = String(decoding: prefix, as: UTF8.self)
                return .path(wanted: grpc ? "gRPC service " + text.trimmingSlashes : "prefix " + text, got: path)
            }
        case .exact(let exact):
            if !pathBytes.elementsEqual(exact) {
                let text = String(decoding: exact, as: UTF8.self)
                return .path(wanted: grpc ? "gRPC method " + text.trimmingSlashes : "path " + text, got: path)
            }
        }

        for header in config.match.headers {
            let value = request.firstHeaderValue(lowercasedName: header.name)
            switch header.kind {
            case .present(let required):
                if (value != nil) != required { return .header(name: header.name, wanted: header.kind, got: value) }
            case .exact(let expected):
                guard let value, value.utf8.elementsEqual(expected.utf8) else {
                    return .header(name: header.name, wanted: header.kind, got: value)
                }
            }
        }

        if config.match.grpc {
            let isPreflight = method == "OPTIONS" && request.firstHeaderValue(lowercasedName: "access-control-request-method") != nil
            if !isPreflight {
                let contentType = request.firstHeaderValue(lowercasedName: "content-type")
                guard let contentType, GRPCContentType.isGRPC(contentType) else { return .grpc(contentType: contentType) }
            }
        }

        if case .regex(let regex) = self.path, case .regex(let pattern) = config.match.path {
            guard regex.matchesWhole(path) else { return .path(wanted: "regex " + pattern, got: path) }
        }
        return nil
    }
}

extension String {
    fileprivate var trimmingSlashes: String {
        String(drop { $0 == "/" }.reversed().drop { $0 == "/" }.reversed())
    }
}
