import Foundation
import JWTTestSupport
import PorticoAuth
import XCTest

/// Every check of `JWTVerifier`, with tokens signed by keys the test generates. Each rejection
/// case is a token that would pass if that one check were missing.
final class JWTVerifierTests: XCTestCase {
    let issuer = "https://auth.example.com"
    var mint: TokenMint!
    var table: JWTKeyTable!
    var verifier: JWTVerifier!
    /// Set for each test: XCTest makes every test's instance when the run starts, and the
    /// tokens are minted with the time they are made, minutes later in a full run.
    var now: Double = 0

    override func setUp() async throws {
        now = Date().timeIntervalSince1970
        mint = TokenMint()
        for (kid, algorithm) in [("rsa", "RS256"), ("ec", "ES256"), ("ed", "EdDSA")] {
            try await mint.addKey(kid: kid, algorithm: algorithm)
        }
        table = try await JWTKeyTable.load(jwksJSON: Array(mint.jwks().utf8))
        verifier = JWTVerifier(issuer: issuer, audiences: ["api"], clockSkewSeconds: 60)
    }

    private func claims(_ extra: [String: Any] = [:]) -> [String: Any] {
        TokenMint.claims(issuer: issuer, audience: "api", extra: extra)
    }

    private func rejection(_ token: String, file: StaticString = #filePath, line: UInt = #line) -> JWTVerifier.Rejection? {
        switch verifier.verify(token, keys: table, now: now) {
        case .success: return nil
        case .failure(let reason): return reason
        }
    }

    func testAcceptsEachAsymmetricAlgorithm() throws {
        for kid in ["rsa", "ec", "ed"] {
            let token = try mint.token(claims: claims(["scope": "read admin", "groups": ["a", "b"]]), kid: kid)
            let verified = try verifier.verify(token, keys: table, now: now).get()
            XCTAssertEqual(verified.claims.string("sub"), "alice", kid)
            XCTAssertEqual(verified.requestPrincipal, "\(issuer)/alice")
            XCTAssertEqual(verified.claims.strings("groups"), ["a", "b"])
            XCTAssertEqual(verified.encodedPayload, token.split(separator: ".")[1].description)
        }
    }

    func testMoreAlgorithmsFromOneKeySetWithoutAlgField() async throws {
        let more = TokenMint()
        try await more.addKey(kid: "ps", algorithm: "PS256")
        try await more.addKey(kid: "rs512", algorithm: "RS512")
        try await more.addKey(kid: "es384", algorithm: "ES384")
        // Without `alg`, a key verifies any algorithm its type allows (RFC 7517 4.4).
        let jwks = more.jwks().replacingOccurrences(of: #""alg":"[A-Z0-9a-z]+","#, with: "", options: .regularExpression)
        XCTAssertFalse(jwks.contains("\"alg\""))
        let keys = try await JWTKeyTable.load(jwksJSON: Array(jwks.utf8))
        for kid in ["ps", "rs512", "es384"] {
            let token = try more.token(claims: claims(), kid: kid)
            XCTAssertNoThrow(try verifier.verify(token, keys: keys, now: now).get(), kid)
        }
    }

    func testRejectsAlgNone() {
        let token = TokenMint.unsignedToken(claims: claims(), header: ["alg": "none", "kid": "rsa"])
        XCTAssertEqual(rejection(token), .unsupportedAlgorithm)
        let signed = TokenMint.unsignedToken(claims: claims(), header: ["alg": "none", "kid": "rsa"], signature: "AAAA")
        XCTAssertEqual(rejection(signed), .unsupportedAlgorithm)
    }

    func testRejectsHMACSignedWithThePublicKey() throws {
        // The classic confusion attack: HS256 keyed with the RSA public key's bytes.
        let jwk = mint.keys[0].jwk
        let secret = Data((jwk["n"]! + jwk["e"]!).utf8)
        let header = ["alg": "HS256", "kid": "rsa", "typ": "JWT"]
        let unsigned = TokenMint.unsignedToken(claims: claims(), header: header)
        let input = String(unsigned.dropLast())
        let mac = HMACHelper.sha256(key: secret, message: Data(input.utf8))
        XCTAssertEqual(rejection(input + "." + TokenMint.base64URL(mac)), .unsupportedAlgorithm)
    }

    func testATokenWithoutKidIsTriedAgainstEveryKeyOfItsAlgorithm() throws {
        let token = try mint.token(claims: claims(), kid: "ec", header: ["kid": nil])
        XCTAssertNil(rejection(token))
    }

    func testRejectsUnknownKid() throws {
        let token = try mint.token(claims: claims(), kid: "rsa", header: ["kid": "rotated-away"])
        XCTAssertEqual(rejection(token), .unknownKey)
    }

    func testRejectsAKeyOfTheWrongTypeForTheAlgorithm() throws {
        // Signed by the EC key but claiming RS256: the RSA algorithm has no key under "ec".
        let token = try mint.token(claims: claims(), kid: "ec", header: ["alg": "RS256"])
        XCTAssertEqual(rejection(token), .unsupportedAlgorithm)
    }

    func testRejectsBadSignature() throws {
        var token = try mint.token(claims: claims(), kid: "rsa")
        // Another key's signature over the same text.
        let other = try mint.token(claims: claims(), kid: "ec", header: ["alg": "RS256"])
        token = token.split(separator: ".").prefix(2).joined(separator: ".") + "." + other.split(separator: ".")[2]
        XCTAssertEqual(rejection(token), .badSignature)
        // Claims changed after signing.
        let parts = try mint.token(claims: claims(), kid: "ed").split(separator: ".")
        let forged = parts[0] + "." + TokenMint.unsignedToken(claims: claims(["sub": "root"]), header: [:]).split(separator: ".")[1] + "." + parts[2]
        XCTAssertEqual(rejection(String(forged)), .badSignature)
    }

    func testRejectsMalformedTokens() {
        for token in ["", "abc", "a.b", "a.b.c.d", "..", "@@@.###.$$$", ".e30.sig"] {
            XCTAssertEqual(rejection(token), .malformed, token)
        }
        XCTAssertEqual(rejection("eyJhbGciOiJSUzI1NiJ9.e30."), .badSignature, "no signature")
        let notJSON = TokenMint.base64URL(Data("{not json".utf8)) + "." + TokenMint.base64URL(Data("{}".utf8)) + ".c2ln"
        XCTAssertEqual(rejection(notJSON), .malformed)
    }

    func testChecksIssuerAndAudience() throws {
        XCTAssertEqual(rejection(try mint.token(claims: claims(["iss": "https://evil.example.com"]))), .wrongIssuer)
        XCTAssertEqual(rejection(try mint.token(claims: claims(["aud": "other"]))), .wrongAudience)
        XCTAssertNil(rejection(try mint.token(claims: claims(["aud": ["other", "api"]]))), "a list audience names api")
        var noAudience = claims()
        noAudience["aud"] = nil
        XCTAssertEqual(rejection(try mint.token(claims: noAudience)), .wrongAudience)
        var noIssuer = claims()
        noIssuer["iss"] = nil
        XCTAssertEqual(rejection(try mint.token(claims: noIssuer)), .wrongIssuer)
    }

    func testExpiryAndNotBeforeWithClockSkew() throws {
        let t = Int(now)
        XCTAssertEqual(rejection(try mint.token(claims: claims(["exp": t - 61]))), .expired)
        XCTAssertNil(rejection(try mint.token(claims: claims(["exp": t - 30]))), "within the 60 s skew")
        XCTAssertEqual(rejection(try mint.token(claims: claims(["nbf": t + 61]))), .notYetValid)
        XCTAssertNil(rejection(try mint.token(claims: claims(["nbf": t + 30]))), "within the 60 s skew")
        XCTAssertEqual(rejection(try mint.token(claims: claims(["exp": "tomorrow"]))), .malformed)
        let strict = JWTVerifier(issuer: issuer, audiences: ["api"], clockSkewSeconds: 0)
        let token = try mint.token(claims: claims(["exp": t - 1]))
        guard case .failure(.expired) = strict.verify(token, keys: table, now: now) else {
            return XCTFail("no skew: a token a second past exp is expired")
        }
    }

    func testRejectsCritAndUnencodedPayloads() throws {
        // Really signed: each would verify if the header were not looked at.
        XCTAssertEqual(rejection(try mint.token(claims: claims(), kid: "ec", extraHeader: ["crit": ["exp"], "exp": 1])),
                       .unsupportedHeader, "crit names a parameter Portico does not understand")
        XCTAssertEqual(rejection(try mint.token(claims: claims(), kid: "ec", extraHeader: ["crit": ["b64"], "b64": false])),
                       .unsupportedHeader, "b64: false, declared critical as RFC 7797 requires")
        XCTAssertEqual(rejection(try mint.token(claims: claims(), kid: "ed", extraHeader: ["b64": false])), .unsupportedHeader)
        XCTAssertEqual(rejection(try mint.token(claims: claims(), kid: "ed", extraHeader: ["crit": [String]()])), .unsupportedHeader)
        XCTAssertEqual(rejection(try mint.token(claims: claims(), kid: "rsa", extraHeader: ["crit": "b64"])), .unsupportedHeader)
        XCTAssertNil(rejection(try mint.token(claims: claims(), kid: "ec", extraHeader: ["b64": true])),
                     "b64: true is the default encoding")
        XCTAssertNil(rejection(try mint.token(claims: claims(), kid: "ec", extraHeader: ["x-vendor": "any"])),
                     "an unknown header that is not critical is ignored (RFC 7515 4)")
    }

    /// Every other spelling of a signed token's parts: padding, the `+/` alphabet, stray bits.
    /// The header and payload variants are really signed over that spelling; the signature
    /// variants reuse a genuine signature, so they pass if the decoder is lenient.
    func testRejectsNonCanonicalBase64URL() throws {
        let header = TokenMint.encode(["alg": "ES256", "kid": "ec", "typ": "JWT"])
        var payloadClaims = claims()
        var payload = TokenMint.encode(payloadClaims)
        // A payload whose encoding needs padding and has `-` or `_` in it (the subject varies it).
        var salt = 0
        while salt < 1000, payload.count % 4 == 0 || !payload.contains(where: { $0 == "-" || $0 == "_" }) {
            salt += 1
            payloadClaims["sub"] = "alice-\(salt)-??>>"
            payload = TokenMint.encode(payloadClaims)
        }
        XCTAssertNil(rejection(try mint.signed(header: header, payload: payload, kid: "ec")), "the canonical spelling passes")

        let padded = payload + String(repeating: "=", count: (4 - payload.count % 4) % 4)
        XCTAssertEqual(rejection(try mint.signed(header: header, payload: padded, kid: "ec")), .malformed, "padding")
        let standardAlphabet = payload.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        XCTAssertEqual(rejection(try mint.signed(header: header, payload: standardAlphabet, kid: "ec")), .malformed, "+/ alphabet")
        let paddedHeader = header + String(repeating: "=", count: (4 - header.count % 4) % 4)
        if paddedHeader != header {
            XCTAssertEqual(rejection(try mint.signed(header: paddedHeader, payload: payload, kid: "ec")), .malformed, "header padding")
        }
        let strayBits = Self.withStrayBits(payload)
        XCTAssertEqual(rejection(try mint.signed(header: header, payload: strayBits, kid: "ec")), .malformed, "unused bits set")

        // The signature: an ES256 signature is 64 bytes, 86 characters, 4 unused bits.
        var token = try mint.token(claims: claims(), kid: "ec")
        while !token.split(separator: ".")[2].contains(where: { $0 == "-" || $0 == "_" }) {
            token = try mint.token(claims: claims(), kid: "ec")
        }
        XCTAssertNil(rejection(token))
        let parts = token.split(separator: ".").map(String.init)
        let signedText = parts[0] + "." + parts[1] + "."
        XCTAssertEqual(parts[2].count % 4, 2)
        XCTAssertEqual(rejection(signedText + parts[2] + "=="), .malformed, "padded signature")
        let plusSlash = parts[2].replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        XCTAssertEqual(rejection(signedText + plusSlash), .malformed, "signature in the +/ alphabet")
        XCTAssertEqual(rejection(signedText + Self.withStrayBits(parts[2])), .malformed, "signature with unused bits set")
    }

    func testKeysPublishedForAnotherPurposeDoNotVerify() async throws {
        for amend: [String: Any] in [["use": "enc"], ["key_ops": ["encrypt"]], ["key_ops": ["sign"]], ["use": 1]] {
            let jwks = mint.jwks(amend: ["ec": amend])
            let keys = try await JWTKeyTable.load(jwksJSON: Array(jwks.utf8))
            let token = try mint.token(claims: claims(), kid: "ec")
            guard case .failure(.unknownKey) = verifier.verify(token, keys: keys, now: now) else {
                return XCTFail("a key with \(amend) verified a token")
            }
            // The other keys of the set still work.
            XCTAssertNoThrow(try verifier.verify(try mint.token(claims: claims(), kid: "ed"), keys: keys, now: now).get())
        }
        for amend: [String: Any] in [["use": NSNull()], ["key_ops": ["verify"]], ["key_ops": ["sign", "verify"], "use": NSNull()]] {
            let keys = try await JWTKeyTable.load(jwksJSON: Array(mint.jwks(amend: ["ec": amend]).utf8))
            XCTAssertNoThrow(try verifier.verify(try mint.token(claims: claims(), kid: "ec"), keys: keys, now: now).get(), "\(amend)")
        }
        // A token without kid is not tried against the encryption key either.
        let only = try await JWTKeyTable.load(jwksJSON: Array(mint.jwks(amend: ["ec": ["use": "enc"]]).utf8))
        let anonymous = try mint.token(claims: claims(), kid: "ec", header: ["kid": nil])
        guard case .failure(.unsupportedAlgorithm) = verifier.verify(anonymous, keys: only, now: now) else {
            return XCTFail("a token without kid verified with an encryption key")
        }
    }

    /// `part` with the last character's unused low bits set: decoders that ignore them read
    /// the same bytes.
    static func withStrayBits(_ part: String) -> String {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
        let unusedMask = part.count % 4 == 2 ? 0x0F : 0x03
        precondition(part.count % 4 != 0, "a part without unused bits")
        let last = alphabet.firstIndex(of: part.last!)!
        return String(part.dropLast()) + String(alphabet[last | unusedMask])
    }

    func testKeySetErrors() async {
        do {
            _ = try await JWTKeyTable.load(jwksJSON: Array("not json".utf8))
            XCTFail("not JSON")
        } catch {}
        do {
            _ = try await JWTKeyTable.load(jwksJSON: Array(#"{"keys":[{"kty":"oct","k":"c2VjcmV0","kid":"h"}]}"#.utf8))
            XCTFail("a symmetric key is not usable")
        } catch let error as JWKSError {
            XCTAssertEqual(error.description, JWKSError.noUsableKey.description)
        } catch {
            XCTFail("\(error)")
        }
    }
}

import Crypto

enum HMACHelper {
    static func sha256(key: Data, message: Data) -> Data {
        Data(HMAC<SHA256>.authenticationCode(for: message, using: SymmetricKey(data: key)))
    }
}
