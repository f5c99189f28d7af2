import Crypto
import Foundation
import SwiftASN1
import X509

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

        let now = Date()
        let caKey = P256.Signing.PrivateKey()
        let caName = try DistinguishedName {
            OrganizationName("Portico development")
            CommonName("Portico development CA")
        }
        let ca = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: .init(caKey.publicKey),
            notValidBefore: now.addingTimeInterval(-3600), notValidAfter: now.addingTimeInterval(5 * 365 * 86400),
            issuer: caName, subject: caName, signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
                Critical(KeyUsage(keyCertSign: true, cRLSign: true))
            },
            issuerPrivateKey: .init(caKey))

        let serverKey = P256.Signing.PrivateKey()
        let server = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: .init(serverKey.publicKey),
            notValidBefore: now.addingTimeInterval(-3600), notValidAfter: now.addingTimeInterval(365 * 86400),
            issuer: caName,
            subject: try DistinguishedName { CommonName("localhost") },
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                Critical(KeyUsage(digitalSignature: true))
                try ExtendedKeyUsage([.serverAuth])
                SubjectAlternativeNames([
                    .dnsName("localhost"),
                    .ipAddress(ASN1OctetString(contentBytes: [127, 0, 0, 1])),
                    .ipAddress(ASN1OctetString(contentBytes: [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1])),
                ])
            },
            issuerPrivateKey: .init(caKey))

        let chain = try server.serializeAsPEM().pemString + "\n" + ca.serializeAsPEM().pemString + "\n"
        try chain.write(toFile: paths.certificate, atomically: true, encoding: .utf8)
        try (Certificate.PrivateKey(serverKey).serializeAsPEM().pemString + "\n")
            .write(toFile: paths.key, atomically: true, encoding: .utf8)
        try (ca.serializeAsPEM().pemString + "\n").write(toFile: paths.authority, atomically: true, encoding: .utf8)
        chmod(paths.key, 0o600)
        return true
    }
}
