import Foundation
import PorticoAuth

/// Makes a development CA and a server certificate for `localhost`, `127.0.0.1` and `::1`, so
/// the TLS listener works on a fresh clone. Never meant for production: the CA key sits beside
/// the certificates.
public enum DevelopmentCertificates {
    public struct Paths: Sendable {
        public var certificate: String
        public var key: String
        /// The CA certificate a client trusts (`curl --cacert`), beside the server certificate.
        public var authority: String

        public init(certificate: String, key: String) {
            self.certificate = certificate
            self.key = key
            self.authority = (certificate as NSString).deletingLastPathComponent + "/dev-ca.pem"
        }
    }

    /// Writes a CA, and a server certificate signed by it, when neither the certificate nor the
    /// key exists yet. Returns true when it made them.
    @discardableResult
    public static func createIfMissing(_ paths: Paths) throws -> Bool {
        let files = FileManager.default
        guard !files.fileExists(atPath: paths.certificate), !files.fileExists(atPath: paths.key) else { return false }
        let directory = (paths.certificate as NSString).deletingLastPathComponent
        if !directory.isEmpty {
            try files.createDirectory(atPath: directory, withIntermediateDirectories: true)
        }
        let authority = try CertificateAuthority()
        let server = try authority.issue(commonName: "localhost", dnsNames: ["localhost"], ipAddresses: ["127.0.0.1", "::1"])
        try writePrivate(server.keyPEM, to: paths.key)
        try server.chainPEM.write(toFile: paths.certificate, atomically: true, encoding: .utf8)
        try authority.certificatePEM.write(toFile: paths.authority, atomically: true, encoding: .utf8)
        return true
    }

    /// Writes a private key readable by its owner only, from the moment the file exists.
    public static func writePrivate(_ text: String, to path: String) throws {
        let created = FileManager.default.createFile(atPath: path, contents: Data(text.utf8),
                                                     attributes: [.posixPermissions: 0o600])
        guard created else { throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: path]) }
        chmod(path, 0o600)
    }
}
