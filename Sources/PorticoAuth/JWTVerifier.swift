import Foundation
import JWTKit

/// Checks a JSON Web Token the way Envoy's `jwt_authn` and Istio's RequestAuthentication do:
/// an asymmetric signature by a key of the configured set, then `iss`, `aud`, `exp` and `nbf`.
///
/// Synchronous and pure: the keys and the time come in, so a request verifies on its own event
/// loop and a test decides what time it is.
public struct JWTVerifier: Sendable {
    public var issuer: String
    /// The token's `aud` must name one of these; empty: `aud` is not checked.
    public var audiences: [String]
    /// Leeway for `exp` and `nbf`, for clocks that disagree a little.
    public var clockSkewSeconds: Double

    public init(issuer: String, audiences: [String] = [], clockSkewSeconds: Double = 60) {
        self.issuer = issuer
        self.audiences = audiences
        self.clockSkewSeconds = clockSkewSeconds
    }

    /// Why a token was refused. The reason goes to metrics and logs, never to the client.
    public enum Rejection: String, Error, Sendable, CaseIterable {
        /// Not three parts of canonical base64url (RFC 7515 2: no padding, no `+` or `/`, and the
        /// unused bits of the last character zero), or not JSON.
        case malformed
        /// A `crit` header (RFC 7515 4.1.11): it names extensions the token needs its verifier
        /// to understand, and Portico implements none; or `b64: false` (RFC 7797), whose
        /// signature covers the payload unencoded.
        case unsupportedHeader = "unsupported_header"
        /// `none`, an HMAC algorithm, or one the key set has no key for.
        case unsupportedAlgorithm = "unsupported_algorithm"
        case unknownKey = "unknown_kid"
        case badSignature = "bad_signature"
        case expired
        case notYetValid = "not_yet_valid"
        case wrongIssuer = "issuer"
        case wrongAudience = "audience"
    }

    private static let asymmetricAlgorithms: Set<String> = [
        "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA",
    ]

    public func verify(_ token: String, keys: JWTKeyTable, now: Double) -> Result<VerifiedToken, Rejection> {
        let bytes = Array(token.utf8)
        // Three base64url parts; the signed text is everything before the second dot.
        guard let firstDot = bytes.firstIndex(of: UInt8(ascii: ".")),
              let secondDot = bytes[(firstDot + 1)...].firstIndex(of: UInt8(ascii: ".")),
              !bytes[(secondDot + 1)...].contains(UInt8(ascii: ".")),
              firstDot > 0, secondDot > firstDot + 1 else {
            return .failure(.malformed)
        }
        // jwt-kit's decoder accepts padding and non-zero unused bits, each a second spelling of
        // one signature; only the canonical spelling passes, whatever a decoder forgives.
        guard Self.isCanonicalBase64URL(bytes[..<firstDot]),
              Self.isCanonicalBase64URL(bytes[(firstDot + 1)..<secondDot]),
              Self.isCanonicalBase64URL(bytes[(secondDot + 1)...]) else {
            return .failure(.malformed)
        }
        let parsed: (header: JWTHeader, payload: ClaimSet, signature: Data)
        do {
            parsed = try DefaultJWTParser().parse(bytes, as: ClaimSet.self)
        } catch {
            return .failure(.malformed)
        }
        // Portico understands no JWS extension, so any `crit` list names one it must refuse;
        // an empty or malformed one is refused too (RFC 7515 4.1.11).
        if parsed.header.fields["crit"] != nil { return .failure(.unsupportedHeader) }
        switch parsed.header.fields["b64"] {
        case nil, .bool(true)?: break
        default: return .failure(.unsupportedHeader)
        }
        guard let algorithm = parsed.header.alg, Self.asymmetricAlgorithms.contains(algorithm) else {
            return .failure(.unsupportedAlgorithm)
        }
        let keyID = parsed.header.kid
        let candidates = keys.keys(keyID: keyID, algorithm: algorithm)
        if candidates.isEmpty {
            if let keyID, !keys.contains(keyID: keyID) { return .failure(.unknownKey) }
            return .failure(.unsupportedAlgorithm)
        }
        guard !parsed.signature.isEmpty else { return .failure(.badSignature) }
        let signedText = bytes[..<secondDot]
        let signed = candidates.contains { key in (try? key.verify(parsed.signature, signs: signedText)) == true }
        guard signed else { return .failure(.badSignature) }

        let claims = parsed.payload
        guard claims.string("iss") == issuer else { return .failure(.wrongIssuer) }
        if !audiences.isEmpty {
            let audience = claims.strings("aud")
            guard audience.contains(where: audiences.contains) else { return .failure(.wrongAudience) }
        }
        switch claims.number("exp") {
        case .some(let exp) where now > exp + clockSkewSeconds: return .failure(.expired)
        case .some: break
        case .none: if claims.values["exp"] != nil { return .failure(.malformed) }
        }
        switch claims.number("nbf") {
        case .some(let nbf) where now + clockSkewSeconds < nbf: return .failure(.notYetValid)
        case .some: break
        case .none: if claims.values["nbf"] != nil { return .failure(.malformed) }
        }
        let encodedPayload = String(decoding: bytes[(firstDot + 1)..<secondDot], as: UTF8.self)
        return .success(VerifiedToken(claims: claims, encodedPayload: encodedPayload))
    }

    /// Whether `part` is the one base64url spelling of its bytes: the URL alphabet only, no
    /// `=`, a length a whole number of bytes can have, and zero in the bits the last character
    /// carries beyond the data (RFC 4648 3.5 lets a decoder reject them; this one must).
    static func isCanonicalBase64URL(_ part: ArraySlice<UInt8>) -> Bool {
        var last: UInt8 = 0
        for byte in part {
            guard let value = base64URLValue(byte) else { return false }
            last = value
        }
        switch part.count % 4 {
        case 0: return true
        case 1: return false
        case 2: return last & 0x0F == 0  // 12 bits for one byte: 4 unused
        default: return last & 0x03 == 0  // 18 bits for two bytes: 2 unused
        }
    }

    private static func base64URLValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"): return byte - UInt8(ascii: "A")
        case UInt8(ascii: "a")...UInt8(ascii: "z"): return byte - UInt8(ascii: "a") + 26
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0") + 52
        case UInt8(ascii: "-"): return 62
        case UInt8(ascii: "_"): return 63
        default: return nil
        }
    }
}

/// A token that passed every check.
public struct VerifiedToken: Sendable {
    public let claims: ClaimSet
    /// The payload exactly as the token carried it (base64url JSON), for `forwardHeader`.
    public let encodedPayload: String

    public init(claims: ClaimSet, encodedPayload: String) {
        self.claims = claims
        self.encodedPayload = encodedPayload
    }

    /// `iss/sub`, what Istio calls the request principal.
    public var requestPrincipal: String? {
        guard let issuer = claims.string("iss"), let subject = claims.string("sub") else { return nil }
        return issuer + "/" + subject
    }
}

/// A token's claims as JSON values.
public struct ClaimSet: JWTPayload, Sendable {
    public let values: [String: ClaimValue]

    public init(values: [String: ClaimValue]) { self.values = values }

    public init(from decoder: any Decoder) throws {
        values = try decoder.singleValueContainer().decode([String: ClaimValue].self)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(values)
    }

    /// Never called: Portico checks the claims itself, synchronously.
    public func verify(using algorithm: some JWTAlgorithm) async throws {}

    public func string(_ name: String) -> String? {
        if case .string(let value)? = values[name] { return value }
        return nil
    }

    public func number(_ name: String) -> Double? {
        if case .number(let value)? = values[name] { return value }
        return nil
    }

    /// A claim as a list of strings, as Istio compares claims: a string is one value, a list is
    /// its string members, a number or boolean its JSON text. Objects and missing claims: none.
    public func strings(_ name: String) -> [String] {
        values[name]?.strings ?? []
    }
}

public enum ClaimValue: Codable, Sendable, Equatable {
    case string(String)
    case number(Double)
    case bool(Bool)
    case array([ClaimValue])
    case object([String: ClaimValue])
    case null

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Double.self) {
            self = .number(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode([ClaimValue].self) {
            self = .array(value)
        } else {
            self = .object(try container.decode([String: ClaimValue].self))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .string(let value): try container.encode(value)
        case .number(let value): try container.encode(value)
        case .bool(let value): try container.encode(value)
        case .array(let value): try container.encode(value)
        case .object(let value): try container.encode(value)
        case .null: try container.encodeNil()
        }
    }

    var strings: [String] {
        switch self {
        case .string(let value): return [value]
        case .number(let value):
            return [value == value.rounded() && abs(value) < 1e15 ? String(Int64(value)) : String(value)]
        case .bool(let value): return [value ? "true" : "false"]
        case .array(let members): return members.flatMap { member -> [String] in
            if case .array = member { return [] }
            return member.strings
        }
        case .object, .null: return []
        }
    }
}
