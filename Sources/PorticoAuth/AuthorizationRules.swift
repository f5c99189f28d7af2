/// Istio AuthorizationPolicy ALLOW rules: a request passes when any rule matches it, and a rule
/// matches when every part it states matches (`from`, `to`, `when`). No rule matches: 403.
public struct AuthorizationRules: Sendable {
    public struct Rule: Sendable {
        /// Peer identities (mTLS principals); nil: any peer, even none.
        public var principals: [StringPattern]?
        /// `iss/sub` of a verified JWT; nil: any, even none.
        public var requestPrincipals: [StringPattern]?
        /// Upper-case method names; nil: any method.
        public var methods: [String]?
        public var paths: [StringPattern]?
        public var hosts: [StringPattern]?
        /// Each named claim must have one of the listed values (a list claim: any member).
        public var claims: [(name: String, values: [String])]

        public init(principals: [StringPattern]? = nil, requestPrincipals: [StringPattern]? = nil,
                    methods: [String]? = nil, paths: [StringPattern]? = nil, hosts: [StringPattern]? = nil,
                    claims: [(name: String, values: [String])] = []) {
            self.principals = principals
            self.requestPrincipals = requestPrincipals
            self.methods = methods
            self.paths = paths
            self.hosts = hosts
            self.claims = claims
        }
    }

    /// What a rule can look at.
    public struct Request {
        public var principal: String?
        public var token: VerifiedToken?
        public var method: String
        /// The normalized path, without the query.
        public var path: String
        public var host: String

        public init(principal: String?, token: VerifiedToken?, method: String, path: String, host: String) {
            self.principal = principal
            self.token = token
            self.method = method
            self.path = path
            self.host = host
        }
    }

    public var rules: [Rule]

    public init(rules: [Rule]) { self.rules = rules }

    public func allows(_ request: Request) -> Bool {
        rules.contains { $0.matches(request) }
    }

    /// The index of the first rule that allows `request`, for `portico explain`; nil: 403.
    public func firstMatchingRule(_ request: Request) -> Int? {
        rules.firstIndex { $0.matches(request) }
    }
}

extension AuthorizationRules.Rule {
    /// `example.com:8443` → `example.com`; `[::1]:443` → `[::1]`.
    static func hostWithoutPort(_ authority: String) -> String {
        if authority.hasPrefix("["), let close = authority.firstIndex(of: "]") {
            return String(authority[...close])
        }
        return String(authority.prefix { $0 != ":" })
    }

    func matches(_ request: AuthorizationRules.Request) -> Bool {
        if let principals {
            guard let principal = request.principal, principals.contains(where: { $0.matches(principal) }) else { return false }
        }
        if let requestPrincipals {
            guard let principal = request.token?.requestPrincipal,
                  requestPrincipals.contains(where: { $0.matches(principal) }) else { return false }
        }
        if let methods, !methods.contains(request.method) { return false }
        if let paths, !paths.contains(where: { $0.matches(request.path) }) { return false }
        if let hosts {
            // Host without its port, compared case-insensitively, as Istio's `hosts`.
            let host = Self.hostWithoutPort(request.host).lowercased()
            guard hosts.contains(where: { $0.matches(host) }) else { return false }
        }
        for claim in claims {
            guard let token = request.token else { return false }
            let present = token.claims.strings(claim.name)
            guard present.contains(where: claim.values.contains) else { return false }
        }
        return true
    }
}

/// Istio's string match: exact, `prefix*`, `*suffix`, or `*` for anything present.
public enum StringPattern: Sendable, Equatable {
    case exact(String)
    case prefix(String)
    case suffix(String)
    case any

    public init(_ text: String) {
        if text == "*" {
            self = .any
        } else if text.hasSuffix("*") {
            self = .prefix(String(text.dropLast()))
        } else if text.hasPrefix("*") {
            self = .suffix(String(text.dropFirst()))
        } else {
            self = .exact(text)
        }
    }

    public func matches(_ value: String) -> Bool {
        switch self {
        case .exact(let text): return value == text
        case .prefix(let text): return value.hasPrefix(text)
        case .suffix(let text): return value.hasSuffix(text)
        case .any: return true
        }
    }
}
