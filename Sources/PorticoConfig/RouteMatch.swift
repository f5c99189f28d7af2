public struct RouteMatch: Sendable, Equatable {
    public var host: HostMatch?
    public var path: PathMatch
    /// Header names are lowercased.
    public var headers: [HeaderMatch]
    /// Upper-case method names; empty means any method.
    public var methods: [String]
    /// Only gRPC calls (`content-type: application/grpc…`, gRPC-Web included): `match.grpc`.
    public var grpc: Bool

    public init(host: HostMatch? = nil, path: PathMatch = .any, headers: [HeaderMatch] = [], methods: [String] = [],
                grpc: Bool = false) {
        self.host = host
        self.path = path
        self.headers = headers
        self.methods = methods
        self.grpc = grpc
    }
}

public enum HostMatch: Sendable, Equatable {
    /// Lowercased host without port.
    case exact(String)
    /// `*.example.com` is stored as `.example.com`: any host that ends with it and has at least
    /// one more character before it.
    case suffix(String)
}

public enum PathMatch: Sendable, Equatable {
    case any
    case prefix(String)
    case exact(String)
    /// The pattern must match the whole normalized path (without the query).
    case regex(String)
}

public struct HeaderMatch: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        case exact(String)
        /// `present: true` requires the header; `present: false` requires its absence.
        case present(Bool)
    }

    public var name: String
    public var kind: Kind

    public init(name: String, kind: Kind) {
        self.name = name
        self.kind = kind
    }
}
