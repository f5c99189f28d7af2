import Crypto
import X509

/// Who a client certificate says its holder is, as Istio and Envoy read it.
public struct PeerIdentity: Sendable, Equatable {
    /// The identity authorization rules match: the SPIFFE (URI) SAN, else the first DNS SAN,
    /// else the subject.
    public let principal: String
    public let uris: [String]
    public let dnsNames: [String]
    /// RFC 4514 form, such as `CN=orders,O=Example`.
    public let subject: String
    /// SHA-256 of the certificate's DER bytes, lower-case hex.
    public let hash: String

    public init(derEncoded bytes: [UInt8]) throws {
        let certificate = try Certificate(derEncoded: bytes)
        var uris: [String] = []
        var dnsNames: [String] = []
        for name in try certificate.extensions.subjectAlternativeNames ?? SubjectAlternativeNames() {
            switch name {
            case .uniformResourceIdentifier(let uri): uris.append(uri)
            case .dnsName(let dns): dnsNames.append(dns)
            default: break
            }
        }
        self.uris = uris
        self.dnsNames = dnsNames
        self.subject = certificate.subject.description
        self.principal = uris.first ?? dnsNames.first ?? subject
        self.hash = SHA256.hash(data: bytes).map { byte in
            let digits = Array("0123456789abcdef".utf8)
            return String(decoding: [digits[Int(byte >> 4)], digits[Int(byte & 0xF)]], as: UTF8.self)
        }.joined()
    }

    /// The `x-forwarded-client-cert` element Envoy sets for this peer
    /// (`Hash=…;Subject="…";URI=…;DNS=…`). Envoy's `By` (the proxy's own URI SAN) is left out:
    /// a gateway's certificate seldom has one.
    public func forwardedClientCertificate() -> String {
        var parts: [String] = ["Hash=" + hash]
        parts.append("Subject=" + Self.quoted(subject))
        parts.append(contentsOf: uris.map { "URI=" + Self.quotedIfNeeded($0) })
        parts.append(contentsOf: dnsNames.map { "DNS=" + Self.quotedIfNeeded($0) })
        return parts.joined(separator: ";")
    }

    /// A value in double quotes with `\` and `"` escaped, as Envoy writes values that contain
    /// the header's separators, so no SAN can pose as another element.
    static func quoted(_ value: String) -> String {
        "\"" + value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
    }

    static func quotedIfNeeded(_ value: String) -> String {
        value.contains(where: { ",;=\"\\ ".contains($0) }) ? quoted(value) : value
    }
}
