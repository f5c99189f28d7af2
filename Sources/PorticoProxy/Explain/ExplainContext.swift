import PorticoConfig

/// What layers need to explain themselves beyond the request.
struct ExplainContext {
    /// The route the request matched.
    let route: RouteConfig
    /// Where each policy is declared, by name.
    let policyLines: [String: Int]
    /// Key sets that could not be loaded for this explanation, and why (a JWKS URL the CLI
    /// cannot fetch).
    let keyProblems: [JWTConfig.KeySource: String]
}
