import NIOCore
import NIOSSL
import PorticoConfig
import PorticoRouting

extension ListenerTLS {
    /// Picks the certificate a ClientHello's server name asks for, among a listener's
    /// `certificates:`; a name none lists keeps the listener's default certificate.
    ///
    /// NIOSSL's context callback, rather than a context per name chosen before the TLS handler
    /// is added: one context keeps the listener's cipher order, client CA and ALPN in one place,
    /// and BoringSSL hands over the name it parsed itself. The files are read here, when the
    /// context is made (at start and when they change), never per handshake.
    static func certificateChooser(_ certificates: [ListenerCertificateConfig]) throws -> NIOSSLContextCallback {
        var entries: [(names: [String], value: NIOSSLContextConfigurationOverride)] = []
        for certificate in certificates {
            var override = NIOSSLContextConfigurationOverride()
            override.certificateChain = try NIOSSLCertificate.fromPEMFile(certificate.certificate).map { .certificate($0) }
            override.privateKey = .privateKey(try NIOSSLPrivateKey(file: certificate.key, format: .pem))
            entries.append((certificate.names, override))
        }
        let table = ServerNameTable(entries)
        return { values, promise in
            promise.succeed(values.serverHostname.flatMap { table.lookup($0) } ?? .noChanges)
        }
    }
}
