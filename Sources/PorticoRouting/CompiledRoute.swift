import PorticoConfig

/// One route of a `RouteTable`, with everything matching needs prepared once: hosts
/// lower-cased into bytes, the regex compiled, the split's picker built.
///
/// A class so that a `MatchedRoute` is one pointer wide as it travels down the pipeline.
public final class CompiledRoute: Sendable {
    /// The route as configured.
    public let config: RouteConfig
    /// The route's position in match order.
    public let index: Int
    /// For a `split` action: picks among `config.action`'s backends by weight.
    public let picker: WeightedPicker?

    let host: HostPattern?
    let path: PathPattern

    enum HostPattern: Sendable {
        case exact([UInt8])
        /// Starts with '.'.
        case suffix([UInt8])
    }

    enum PathPattern: Sendable {
        case any
        case prefix([UInt8])
        case exact([UInt8])
        case regex(CompiledRegex)
    }

    init(config: RouteConfig, index: Int) throws(RouteTableError) {
        self.config = config
        self.index = index

        switch config.match.host {
        case nil:
            host = nil
        case .exact(let name):
            host = .exact(Array(HostName.canonical(name).utf8))
        case .suffix(let suffix):
            let canonical = HostName.canonical(suffix)
            // Tolerate `example.com` for `.example.com`: without the dot, `badexample.com`
            // would match, which nobody means.
            host = .suffix(Array((canonical.hasPrefix(".") ? canonical : "." + canonical).utf8))
        }

        switch config.match.path {
        case .any:
            path = .any
        case .prefix(let prefix):
            path = .prefix(Array(prefix.utf8))
        case .exact(let exact):
            path = .exact(Array(exact.utf8))
        case .regex(let pattern):
            do {
                path = .regex(try CompiledRegex(pattern))
            } catch {
                throw .invalidRegex(route: config.name, pattern: pattern, location: config.location, reason: "\(error)")
            }
        }

        if case .split(let backends) = config.action {
            picker = WeightedPicker(weights: backends.map(\.weight))
        } else {
            picker = nil
        }
    }

    /// The prefix this route matched on, for prefix routes.
    public var matchedPrefix: String? {
        if case .prefix(let prefix) = config.match.path { return prefix }
        return nil
    }

    /// Where a request on this route goes: the service or function itself, or for a split the
    /// backend `draw` lands on; `nil` for direct responses and redirects. `draw` is a uniform
    /// 64-bit number: a fresh random one for each request (as Envoy, Istio and Gateway API
    /// split), or the hash of the request's sticky value (`stickyHash(of:)`).
    public func backend(draw: UInt64) -> BackendReference? {
        switch config.action {
        case .service(let name):
            return .service(name)
        case .function(let name):
            return .function(name)
        case .split(let backends):
            guard let picker, !backends.isEmpty else { return nil }
            return backends[picker.pick(hash: draw)].backend
        case .directResponse, .redirect:
            return nil
        }
    }

    /// For a split with `stickyOn`: the hash of the request's header or cookie value, so a
    /// client that keeps sending it stays on one side. `nil` without `stickyOn`, or when the
    /// request lacks the value (such a request draws at random).
    public func stickyHash(of request: some RoutableRequest) -> UInt64? {
        switch config.splitStickyOn {
        case nil:
            return nil
        case .header(let name):
            return request.firstHeaderValue(lowercasedName: name).map { StableHash.hash($0) }
        case .cookie(let name):
            for header in request.headerValues(lowercasedName: "cookie") {
                if let value = CookieHeader.value(named: name, in: header) { return StableHash.hash(value.utf8) }
            }
            return nil
        }
    }
}
