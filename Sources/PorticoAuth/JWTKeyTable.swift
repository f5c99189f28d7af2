import Foundation
import JWTKit

/// The verification keys of one JSON Web Key Set, by key id and algorithm, ready to use
/// without suspending.
///
/// jwt-kit hands out keys only through its `JWTKeyCollection` actor, whose methods are async;
/// its keys themselves (`JWTAlgorithm`) verify synchronously. So the keys are taken out of the
/// actor once, when a key set is loaded, and a request verifies on its own event loop with
/// jwt-kit's own signature code, never hopping to another thread.
public struct JWTKeyTable: Sendable {
    /// Algorithm name, then key, for each key id.
    private let byKeyID: [String: [String: any JWTAlgorithm]]
    /// Every key by algorithm: a token without a `kid` is tried against each key of its
    /// algorithm, as Envoy does.
    private let anonymous: [String: [any JWTAlgorithm]]

    /// Key ids in the set, sorted (for logs and the admin API).
    public let keyIDs: [String]

    public static let empty = JWTKeyTable(byKeyID: [:], anonymous: [:])

    private init(byKeyID: [String: [String: any JWTAlgorithm]], anonymous: [String: [any JWTAlgorithm]]) {
        self.byKeyID = byKeyID
        self.anonymous = anonymous
        self.keyIDs = byKeyID.keys.sorted()
    }

    /// Whether the set has a key with this id.
    public func contains(keyID: String) -> Bool { byKeyID[keyID] != nil }

    /// The keys a token signed with `algorithm` (and naming `keyID`, if it does) may verify with.
    /// An algorithm the key was not made for (an HMAC name against an RSA key) finds none.
    func keys(keyID: String?, algorithm: String) -> [any JWTAlgorithm] {
        if let keyID {
            return byKeyID[keyID]?[algorithm].map { [$0] } ?? []
        }
        return anonymous[algorithm] ?? []
    }

    /// Parses a JWKS document (`{"keys": [...]}`). Keys of a kind Portico does not verify with
    /// (symmetric `oct` keys among them) are skipped; a document with no usable key is an error.
    public static func load(jwksJSON: some DataProtocol) async throws -> JWTKeyTable {
        let jwks: LenientKeySet
        do {
            jwks = try JSONDecoder().decode(LenientKeySet.self, from: Data(jwksJSON))
        } catch {
            throw JWKSError.unreadable(String(describing: error))
        }
        var byKeyID: [String: [String: any JWTAlgorithm]] = [:]
        var anonymous: [String: [any JWTAlgorithm]] = [:]
        for (index, original) in jwks.keys.enumerated() {
            guard var jwk = original.key else { continue }
            // The collection insists on a kid; a key without one gets a private name here.
            let keyID = jwk.keyIdentifier?.string
            jwk.keyIdentifier = JWKIdentifier(string: keyID ?? "portico-anonymous-\(index)")
            for algorithm in candidateAlgorithms(jwk) {
                // One collection per algorithm: a JWK without `alg` keeps the first signer made for it.
                let collection = JWTKeyCollection()
                guard (try? await collection.add(jwk: jwk)) != nil,
                      let key = try? await collection.getKey(for: jwk.keyIdentifier, alg: algorithm),
                      key.name == algorithm else { continue }
                if let keyID { byKeyID[keyID, default: [:]][algorithm] = key }
                anonymous[algorithm, default: []].append(key)
            }
        }
        guard !byKeyID.isEmpty || !anonymous.isEmpty else { throw JWKSError.noUsableKey }
        return JWTKeyTable(byKeyID: byKeyID, anonymous: anonymous)
    }

    /// The asymmetric algorithms a key can verify: the one its `alg` names, or every one its
    /// type allows (RFC 7517 makes `alg` optional).
    private static func candidateAlgorithms(_ jwk: JWK) -> [String] {
        let named = jwk.algorithm?.rawValue
        let allowed: [String]
        switch jwk.keyType {
        case .rsa: allowed = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512"]
        case .ecdsa:
            switch jwk.curve?.rawValue {
            case "P-256": allowed = ["ES256"]
            case "P-384": allowed = ["ES384"]
            case "P-521": allowed = ["ES512"]
            default: allowed = []
            }
        case .octetKeyPair: allowed = ["EdDSA"]
        default: allowed = []
        }
        if let named { return allowed.contains(named) ? [named] : [] }
        return allowed
    }
}

/// A key set in which a key jwt-kit cannot read (a symmetric `oct` key, a curve it does not
/// know) is skipped rather than failing the whole set, as identity providers publish such keys.
/// So is a key published for another purpose (RFC 7517 4.2 and 4.3): `use` other than `sig`,
/// or `key_ops` without `verify`. An encryption key must not verify signatures.
private struct LenientKeySet: Decodable {
    struct Entry: Decodable {
        let key: JWK?
        init(from decoder: any Decoder) throws {
            guard let purpose = try? Purpose(from: decoder), purpose.allowsVerification else {
                key = nil
                return
            }
            key = try? JWK(from: decoder)
        }
    }

    /// The JWK members jwt-kit does not read.
    struct Purpose: Decodable {
        let use: String?
        let keyOperations: [String]?

        enum CodingKeys: String, CodingKey {
            case use
            case keyOperations = "key_ops"
        }

        /// A member that is present but not a string (or list of strings) fails decoding,
        /// and so skips the key: a key whose purpose cannot be read is not trusted with one.
        var allowsVerification: Bool {
            if let use, use != "sig" { return false }
            if let keyOperations, !keyOperations.contains("verify") { return false }
            return true
        }
    }

    let keys: [Entry]
}

public enum JWKSError: Error, CustomStringConvertible {
    case unreadable(String)
    case noUsableKey

    public var description: String {
        switch self {
        case .unreadable(let reason): return "not a JSON Web Key Set: \(reason)"
        case .noUsableKey: return "the key set has no RSA, EC or Ed25519 public key"
        }
    }
}
