import CryptoExtras
import Crypto
import Foundation
import JWTKit

/// Signing keys a test generates, the JWKS that publishes them, and tokens signed with them,
/// with any header and claims a test wants (including ones no honest issuer would make).
///
/// `@unchecked Sendable`: a test adds keys and mints tokens from one task at a time (its
/// setUp, then its body), never concurrently; the compiler cannot see that, and a lock would
/// only hide a test that started doing otherwise.
public final class TokenMint: @unchecked Sendable {
    public struct Key {
        public let kid: String
        public let algorithm: String
        /// The public JWK as JSON.
        public let jwk: [String: String]
        let signer: any JWTAlgorithm
    }

    public private(set) var keys: [Key] = []

    public init() {}

    /// Adds a new key pair for `algorithm` (RS256/384/512, PS256, ES256, ES384, EdDSA).
    @discardableResult
    public func addKey(kid: String, algorithm: String) async throws -> Key {
        let collection = JWTKeyCollection()
        let identifier = JWKIdentifier(string: kid)
        var jwk = ["kid": kid, "alg": algorithm, "use": "sig"]
        switch algorithm {
        case "RS256", "RS384", "RS512", "PS256", "PS384", "PS512":
            let backing = try _RSA.Signing.PrivateKey(keySize: .bits2048)
            let key = try Insecure.RSA.PrivateKey(backing: backing)
            let digest: DigestAlgorithm = algorithm.hasSuffix("256") ? .sha256 : algorithm.hasSuffix("384") ? .sha384 : .sha512
            if algorithm.hasPrefix("PS") {
                await collection.add(pss: key, digestAlgorithm: digest, kid: identifier)
            } else {
                await collection.add(rsa: key, digestAlgorithm: digest, kid: identifier)
            }
            let primitives = try key.publicKey.getKeyPrimitives()
            jwk["kty"] = "RSA"
            jwk["n"] = Self.base64URL(primitives.modulus)
            jwk["e"] = Self.base64URL(primitives.publicExponent)
        case "ES256":
            let backing = P256.Signing.PrivateKey()
            await collection.add(ecdsa: try ES256PrivateKey(backing: backing), kid: identifier)
            let point = backing.publicKey.x963Representation.dropFirst()
            jwk["kty"] = "EC"
            jwk["crv"] = "P-256"
            jwk["x"] = Self.base64URL(point.prefix(32))
            jwk["y"] = Self.base64URL(point.suffix(32))
        case "ES384":
            let backing = P384.Signing.PrivateKey()
            await collection.add(ecdsa: try ES384PrivateKey(backing: backing), kid: identifier)
            let point = backing.publicKey.x963Representation.dropFirst()
            jwk["kty"] = "EC"
            jwk["crv"] = "P-384"
            jwk["x"] = Self.base64URL(point.prefix(48))
            jwk["y"] = Self.base64URL(point.suffix(48))
        case "EdDSA":
            let backing = Curve25519.Signing.PrivateKey()
            await collection.add(eddsa: EdDSA.PrivateKey(backing: backing), kid: identifier)
            jwk["kty"] = "OKP"
            jwk["crv"] = "Ed25519"
            jwk["x"] = Self.base64URL(backing.publicKey.rawRepresentation)
        default:
            fatalError("TokenMint does not make \(algorithm) keys")
        }
        let key = Key(kid: kid, algorithm: algorithm, jwk: jwk, signer: try await collection.getKey(for: identifier))
        keys.append(key)
        return key
    }

    /// `{"keys": [...]}` with the public half of every key (or of the named ones). `amend`
    /// adds members to a key's JWK by kid (`use`, `key_ops`), or removes one with `NSNull()`.
    public func jwks(only kids: [String]? = nil, amend: [String: [String: Any]] = [:]) -> String {
        let published = keys.filter { kids?.contains($0.kid) ?? true }.map { key -> [String: Any] in
            var jwk: [String: Any] = key.jwk
            for (name, value) in amend[key.kid] ?? [:] { jwk[name] = value is NSNull ? nil : value }
            return jwk
        }
        let data = try! JSONSerialization.data(withJSONObject: ["keys": published], options: [.sortedKeys])
        return String(decoding: data, as: UTF8.self)
    }

    /// A token signed by `kid` (the first key by default). `header` entries override the
    /// defaults (`alg` of the key, `kid`, `typ`); a nil value removes the entry.
    /// `extraHeader` adds members of any JSON type (`crit` as a list, `b64` as a boolean).
    public func token(claims: [String: Any], kid: String? = nil, header: [String: String?] = [:],
                      extraHeader: [String: Any] = [:]) throws -> String {
        let key = self.key(kid)
        var fields: [String: Any] = ["alg": key.algorithm, "kid": key.kid, "typ": "JWT"]
        for (name, value) in header { fields[name] = value }
        for (name, value) in extraHeader { fields[name] = value }
        return try signed(header: Self.encode(fields), payload: Self.encode(claims), kid: key.kid)
    }

    /// A token whose first two parts are exactly the given text, with a real signature over
    /// them: for encodings no honest issuer produces (padding, the `+/` alphabet).
    public func signed(header: String, payload: String, kid: String? = nil) throws -> String {
        let signingInput = header + "." + payload
        let signature = try key(kid).signer.sign(Array(signingInput.utf8))
        return signingInput + "." + Self.base64URL(Data(signature))
    }

    private func key(_ kid: String?) -> Key {
        guard let key = kid.map({ kid in keys.first { $0.kid == kid }! }) ?? keys.first else {
            fatalError("TokenMint has no key")
        }
        return key
    }

    /// A token with `alg` as given and a signature made with an HMAC secret (for the attack in
    /// which the public key is used as the secret, or `none` with an empty signature).
    public static func unsignedToken(claims: [String: Any], header: [String: String], signature: String = "") -> String {
        encode(header) + "." + encode(claims) + "." + signature
    }

    /// Standard claims for `issuer` and `audience`, valid from a minute ago for an hour.
    public static func claims(issuer: String, audience: String, subject: String = "alice",
                              extra: [String: Any] = [:], now: Date = Date()) -> [String: Any] {
        var claims: [String: Any] = [
            "iss": issuer, "aud": audience, "sub": subject,
            "iat": Int(now.timeIntervalSince1970) - 60, "nbf": Int(now.timeIntervalSince1970) - 60,
            "exp": Int(now.timeIntervalSince1970) + 3600,
        ]
        for (name, value) in extra { claims[name] = value }
        return claims
    }

    public static func base64URL(_ data: some DataProtocol) -> String {
        Data(data).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    /// JSON with sorted keys, base64url-encoded as a token part.
    public static func encode(_ object: Any) -> String {
        base64URL(try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]))
    }
}
