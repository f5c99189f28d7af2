import CPorticoTLS
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
        self.files = WatchedFiles([config.certificate, config.key] + (config.clientCA.map { [$0] } ?? [])
            + config.sniCertificates.flatMap { [$0.certificate, $0.key] })
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
        if !tls.sniCertificates.isEmpty {
            configuration.sslContextCallback = try certificateChooser(tls.sniCertificates)
        }
        configuration.minimumTLSVersion = .tlsv12
        // The config reader admits only names BoringSSL knows, so this cannot hit NIOSSL's
        // precondition on a cipher string BoringSSL refuses.
        configuration.cipherSuites = tls.cipherSuites.joined(separator: ":")
        if let clientCA = tls.clientCA {
            configuration.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(clientCA))
            // Strict: no valid client certificate, no handshake. Permissive: a client without
            // one is served without a principal; one with a bad certificate is still refused.
            configuration.certificateVerification = tls.mode == .strict ? .noHostnameVerification : .optionalVerification
        }
        let context = try NIOSSLContext(configuration: configuration)
        try preferServerCipherOrder(context)
        return context
    }

    /// Turns on BoringSSL's server cipher preference, which NIOSSL has no setting for: without
    /// it the client's order picks the TLS 1.2 suite, and the list above would only filter.
    ///
    /// NIOSSL keeps its `SSL_CTX *` in a private stored property; it is read by reflection,
    /// and a NIOSSL that renames it makes this throw at start rather than serve without it.
    private static func preferServerCipherOrder(_ context: NIOSSLContext) throws {
        let stored = Mirror(reflecting: context).children.first { $0.label == "sslContext" }?.value
        guard let pointer = stored as? OpaquePointer else { throw ListenerTLSError.serverCipherOrderUnavailable }
        let options = portico_ssl_ctx_prefer_server_ciphers(UnsafeMutableRawPointer(pointer))
        guard options & PORTICO_SSL_OP_CIPHER_SERVER_PREFERENCE != 0 else { throw ListenerTLSError.serverCipherOrderUnavailable }
    }
}

enum ListenerTLSError: Error, CustomStringConvertible {
    case serverCipherOrderUnavailable

    var description: String {
        "cannot make the TLS listener prefer its own cipher order: this NIOSSL version keeps its SSL_CTX elsewhere"
    }
}
