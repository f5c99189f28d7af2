import PorticoConfig

/// The first condition of a route that a request does not meet, with what the route wants and
/// what the request has, for `portico explain`.
public enum RouteMismatch: Sendable, Equatable, CustomStringConvertible {
    /// The route takes only `allowed` methods.
    case method(allowed: [String], got: String)
    /// `wanted` is `api.example.com` or `*.example.com`; `got` the request's host without its port.
    case host(wanted: String, got: String)
    /// `wanted` reads `prefix /v1/`, `path /healthz` or `regex ^/x$`.
    case path(wanted: String, got: String)
    /// A header condition; `got` is the request's first value, nil when it has none.
    case header(name: String, wanted: HeaderMatch.Kind, got: String?)
    /// `match.grpc`: the request's `content-type` is not a gRPC one.
    case grpc(contentType: String?)

    /// Which kind of condition failed: `method`, `host`, `path`, `header` or `grpc`.
    public var condition: String {
        switch self {
        case .method: return "method"
        case .host: return "host"
        case .path: return "path"
        case .header: return "header"
        case .grpc: return "grpc"
        }
    }

    public var description: String {
        switch self {
        case .method(let allowed, let got):
            return "method \(got) is not one of \(allowed.joined(separator: ", "))"
        case .host(let wanted, let got):
            return "host \(got.isEmpty ? "(none)" : got) is not \(wanted)"
        case .path(let wanted, let got):
            return "path \(got) does not match \(wanted)"
        case .header(let name, let wanted, let got):
            switch (wanted, got) {
            case (.present(true), _): return "header \(name) is missing"
            case (.present(false), let value?): return "header \(name) must be absent, but is \"\(value)\""
            case (.present(false), nil): return "header \(name) must be absent"
            case (.exact(let expected), nil): return "header \(name) is missing (wants \"\(expected)\")"
            case (.exact(let expected), let value?): return "header \(name) is \"\(value)\", wants \"\(expected)\""
            }
        case .grpc(let contentType):
            return "not a gRPC call: content-type is \(contentType.map { "\"\($0)\"" } ?? "missing")"
        }
    }
}
