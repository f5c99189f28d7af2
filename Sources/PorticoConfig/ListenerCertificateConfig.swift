/// One of a TLS listener's `certificates:`: the certificate a client that asks (by SNI) for one
/// of `names` is shown.
public struct ListenerCertificateConfig: Sendable, Equatable {
    /// Exact names and one-label wildcards (see `ServerNamePattern`), lower-cased.
    public var names: [String]
    /// PEM certificate chain and PEM private key, relative to the working directory.
    public var certificate: String
    public var key: String

    public init(names: [String], certificate: String, key: String) {
        self.names = names
        self.certificate = certificate
        self.key = key
    }
}
