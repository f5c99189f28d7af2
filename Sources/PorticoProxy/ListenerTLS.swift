import NIOConcurrencyHelpers
import NIOSSL
import PorticoConfig

/// A TLS listener's certificate, key and client CA, loaded into an `NIOSSLContext` that each
/// new connection takes, and loaded again when one of the files changes: a rotated certificate
/// serves new connections without a restart, while open connections keep theirs.
final class ListenerTLS: Sendable {
    let config: ListenerTLSConfig
    private let files: WatchedFiles
    private let state: NIOLockedValueBox<NIOSSLContext>

    init(config: ListenerTLSConfig) throws {
        self.config = config
        self.files = WatchedFiles([config.certificate, config.key] + (config.clientCA.map { [$0] } ?? []))
        self.state = NIOLockedValueBox(try Self.makeContext(config))
    }

    var context: NIOSSLContext { state.withLockedValue { $0 } }

    /// Reads the files again; if any changed, makes a new context. Returns true when it
    /// changed; throws when the files changed but do not make a working context (the old one
    /// keeps serving).
    func reloadIfChanged() throws -> Bool {
        // A broken change is reported once: the next call sees no change until the files move again.
        guard files.takeChange() else { return false }
        let context = try Self.makeContext(config)
        state.withLockedValue { $0 = context }
        return true
    }

    static func makeContext(_ tls: ListenerTLSConfig) throws -> NIOSSLContext {
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: try NIOSSLCertificate.fromPEMFile(tls.certificate).map { .certificate($0) },
            privateKey: .privateKey(try NIOSSLPrivateKey(file: tls.key, format: .pem)))
        configuration.applicationProtocols = ["h2", "http/1.1"]
        configuration.minimumTLSVersion = .tlsv12
        if let clientCA = tls.clientCA {
            configuration.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(clientCA))
            // Strict: no valid client certificate, no handshake. Permissive: a client without
            // one is served without a principal; one with a bad certificate is still refused.
            configuration.certificateVerification = tls.mode == .strict ? .noHostnameVerification : .optionalVerification
        }
        return try NIOSSLContext(configuration: configuration)
    }
}
