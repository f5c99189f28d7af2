import Crypto
import Foundation
import SwiftASN1
import X509

/// A development certificate authority: makes a CA and the workload certificates it signs
/// (`portico certs`, and the gateway's own certificate on a fresh clone). P-256 keys, PEM out.
/// Never meant for production: whoever holds the CA key can mint any identity.
public struct CertificateAuthority: Sendable {
    public let certificate: Certificate
    private let key: Certificate.PrivateKey

    /// A new CA valid for `years`.
    public init(commonName: String = "Portico development CA", years: Int = 5, now: Date = Date()) throws {
        let caKey = P256.Signing.PrivateKey()
        let name = try DistinguishedName {
            OrganizationName("Portico development")
            CommonName(commonName)
        }
        self.key = Certificate.PrivateKey(caKey)
        self.certificate = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: .init(caKey.publicKey),
            notValidBefore: now.addingTimeInterval(-3600), notValidAfter: now.addingTimeInterval(Double(years) * 365 * 86400),
            issuer: name, subject: name, signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
                Critical(KeyUsage(keyCertSign: true, cRLSign: true))
            },
            issuerPrivateKey: key)
    }

    /// A CA read back from its PEM certificate and key.
    public init(certificatePEM: String, keyPEM: String) throws {
        self.certificate = try Certificate(pemEncoded: certificatePEM)
        self.key = try Certificate.PrivateKey(pemEncoded: keyPEM)
    }

    public var certificatePEM: String { get throws { try certificate.serializeAsPEM().pemString + "\n" } }
    public var keyPEM: String { get throws { try key.serializeAsPEM().pemString + "\n" } }

    /// A certificate for a workload or server, usable both ways (serverAuth and clientAuth), so
    /// one file serves a gateway listener, an upstream, and a client doing mTLS.
    public struct Issued: Sendable {
        /// The leaf, then the CA: what a server or client presents.
        public let chainPEM: String
        public let keyPEM: String
    }

    public func issue(commonName: String, uris: [String] = [], dnsNames: [String] = [], ipAddresses: [String] = [],
                      days: Int = 365, now: Date = Date()) throws -> Issued {
        let leafKey = P256.Signing.PrivateKey()
        var names: [GeneralName] = uris.map { .uniformResourceIdentifier($0) } + dnsNames.map { .dnsName($0) }
        for address in ipAddresses {
            guard let bytes = Self.ipBytes(address) else { throw CertificateAuthorityError.badIPAddress(address) }
            names.append(.ipAddress(ASN1OctetString(contentBytes: ArraySlice(bytes))))
        }
        let leaf = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: .init(leafKey.publicKey),
            notValidBefore: now.addingTimeInterval(-3600), notValidAfter: now.addingTimeInterval(Double(days) * 86400),
            issuer: certificate.subject,
            subject: try DistinguishedName { CommonName(commonName) },
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                Critical(KeyUsage(digitalSignature: true))
                try ExtendedKeyUsage([.serverAuth, .clientAuth])
                if !names.isEmpty { SubjectAlternativeNames(names) }
            },
            issuerPrivateKey: key)
        return Issued(
            chainPEM: try leaf.serializeAsPEM().pemString + "\n" + certificatePEM,
            keyPEM: try Certificate.PrivateKey(leafKey).serializeAsPEM().pemString + "\n")
    }

    static func ipBytes(_ text: String) -> [UInt8]? {
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 { return withUnsafeBytes(of: &v4) { Array($0) } }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, text, &v6) == 1 { return withUnsafeBytes(of: &v6) { Array($0) } }
        return nil
    }
}

public enum CertificateAuthorityError: Error, CustomStringConvertible {
    case badIPAddress(String)

    public var description: String {
        switch self {
        case .badIPAddress(let text): return "not an IP address: \(text)"
        }
    }
}
