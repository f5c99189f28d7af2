/// A route's `cors`, as Envoy's route CORS policy and the Fetch standard's CORS protocol.
public struct CORSConfig: Sendable, Equatable {
    /// Exact origins (`https://app.example.com`), or `*` for any.
    public var allowOrigins: [String] = []
    /// Methods a preflight allows; empty: the one the preflight asks for, if it is GET, HEAD or POST.
    public var allowMethods: [String] = ["GET", "HEAD", "POST"]
    /// Request headers a preflight allows (lowercased); empty: none beyond the CORS-safelisted.
    public var allowHeaders: [String] = []
    /// Response headers a page may read (lowercased), such as `grpc-status` and `grpc-message`.
    public var exposeHeaders: [String] = []
    /// How long a browser may cache a preflight's answer.
    public var maxAge: ConfigDuration?
    public var allowCredentials = false

    public init() {}
}
