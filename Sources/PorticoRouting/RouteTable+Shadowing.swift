import PorticoConfig

extension RouteTable {
    /// Routes that can never match because an earlier route covers every request they match,
    /// each reported once, with the first route that covers it.
    ///
    /// Conservative: a route is reported only when coverage is certain from the conditions
    /// alone (two different regexes, for example, are never compared), so `portico check`
    /// can warn without false alarms. Missing a case is acceptable; a wrong warning is not.
    public func shadowedRoutes() -> [RouteShadowing] {
        var findings: [RouteShadowing] = []
        for later in routes.indices {
            for earlier in 0..<later where routes[earlier].covers(routes[later]) {
                findings.append(RouteShadowing(shadowed: later, by: earlier))
                break
            }
        }
        return findings
    }
}

extension CompiledRoute {
    /// True when every request `other` matches is also matched by `self`.
    func covers(_ other: CompiledRoute) -> Bool {
        coversHost(of: other) && coversPath(of: other) && coversHeaders(of: other) && coversMethods(of: other)
    }

    private func coversHost(of other: CompiledRoute) -> Bool {
        switch (host, other.host) {
        case (nil, _):
            return true
        case (.some, nil):
            return false
        case let (.exact(mine), .exact(theirs)):
            return mine == theirs
        case let (.suffix(mine), .exact(theirs)):
            return theirs.count > mine.count && theirs.hasByteSuffix(mine)
        case let (.suffix(mine), .suffix(theirs)):
            // `.b.example.com` is inside `.example.com`; both start with '.', so a suffix of a
            // suffix is always on a label boundary.
            return theirs.hasByteSuffix(mine)
        case (.exact, .suffix):
            return false
        }
    }

    private func coversPath(of other: CompiledRoute) -> Bool {
        switch (config.match.path, other.config.match.path) {
        case (.any, _):
            return true
        case let (.prefix(mine), .prefix(theirs)), let (.prefix(mine), .exact(theirs)):
            return theirs.utf8.starts(with: mine.utf8)
        case let (.exact(mine), .exact(theirs)):
            return mine.utf8.elementsEqual(theirs.utf8)
        case let (.regex(mine), .regex(theirs)):
            return mine == theirs
        default:
            return false
        }
    }

    private func coversHeaders(of other: CompiledRoute) -> Bool {
        // A gRPC-only route covers only gRPC-only routes.
        (!config.match.grpc || other.config.match.grpc)
            && config.match.headers.allSatisfy { other.config.match.headers.contains($0) }
    }

    private func coversMethods(of other: CompiledRoute) -> Bool {
        let mine = config.match.methods
        let theirs = other.config.match.methods
        if mine.isEmpty { return true }
        return !theirs.isEmpty && theirs.allSatisfy { mine.contains($0) }
    }
}

extension Array where Element == UInt8 {
    fileprivate func hasByteSuffix(_ suffix: [UInt8]) -> Bool {
        count >= suffix.count && self[(count - suffix.count)...].elementsEqual(suffix)
    }
}
