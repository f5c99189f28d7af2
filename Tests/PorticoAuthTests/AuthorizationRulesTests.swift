import JWTTestSupport
import PorticoAuth
import XCTest

final class AuthorizationRulesTests: XCTestCase {
    private func token(_ claims: [String: ClaimValue]) -> VerifiedToken {
        VerifiedToken(claims: ClaimSet(values: claims), encodedPayload: "")
    }

    private func request(principal: String? = nil, token: VerifiedToken? = nil, method: String = "GET",
                         path: String = "/api/orders", host: String = "api.example.com:8443") -> AuthorizationRules.Request {
        .init(principal: principal, token: token, method: method, path: path, host: host)
    }

    let orders = "spiffe://example.org/ns/default/sa/orders"

    func testPrincipalAndOperationMustBothMatch() {
        let rules = AuthorizationRules(rules: [
            .init(principals: [StringPattern(orders)], methods: ["GET", "POST"], paths: [StringPattern("/api/*")]),
        ])
        XCTAssertTrue(rules.allows(request(principal: orders)))
        XCTAssertFalse(rules.allows(request(principal: orders, method: "DELETE")))
        XCTAssertFalse(rules.allows(request(principal: orders, path: "/admin")))
        XCTAssertFalse(rules.allows(request(principal: "spiffe://example.org/ns/default/sa/billing")))
        XCTAssertFalse(rules.allows(request(principal: nil)), "no certificate, no principal")
    }

    func testAnyRuleAllows() {
        let rules = AuthorizationRules(rules: [
            .init(principals: [StringPattern("spiffe://example.org/ns/prod/*")]),
            .init(claims: [("scope", ["admin"])]),
        ])
        XCTAssertTrue(rules.allows(request(principal: "spiffe://example.org/ns/prod/sa/x")))
        XCTAssertTrue(rules.allows(request(token: token(["scope": .string("admin")]))))
        XCTAssertFalse(rules.allows(request(token: token(["scope": .string("read")]))))
        XCTAssertFalse(rules.allows(request()))
        XCTAssertFalse(AuthorizationRules(rules: []).allows(request(principal: orders)), "no rule: nothing allowed")
    }

    func testClaimsMatchStringsListsAndNumbers() {
        let rules = AuthorizationRules(rules: [.init(claims: [("groups", ["ops", "sre"]), ("level", ["3"])])])
        XCTAssertTrue(rules.allows(request(token: token(["groups": .array([.string("dev"), .string("sre")]), "level": .number(3)]))))
        XCTAssertFalse(rules.allows(request(token: token(["groups": .array([.string("dev")]), "level": .number(3)]))))
        XCTAssertFalse(rules.allows(request(token: token(["groups": .string("ops")]))), "every claim of a rule must match")
        XCTAssertFalse(rules.allows(request(token: nil)), "no token, no claims")
    }

    func testRequestPrincipalsAndHosts() {
        let rules = AuthorizationRules(rules: [
            .init(requestPrincipals: [StringPattern("https://auth.example.com/*")], hosts: [StringPattern("*.example.com")]),
        ])
        let alice = token(["iss": .string("https://auth.example.com"), "sub": .string("alice")])
        XCTAssertTrue(rules.allows(request(token: alice)))
        XCTAssertTrue(rules.allows(request(token: alice, host: "API.Example.com")), "hosts compare without case and port")
        XCTAssertFalse(rules.allows(request(token: alice, host: "example.org")))
        let v6 = AuthorizationRules(rules: [.init(hosts: [StringPattern("[::1]")])])
        XCTAssertTrue(v6.allows(request(host: "[::1]:8443")), "an IPv6 host keeps its brackets and loses its port")
        let other = token(["iss": .string("https://other"), "sub": .string("alice")])
        XCTAssertFalse(rules.allows(request(token: other)))
    }

    func testStringPatterns() {
        XCTAssertTrue(StringPattern("*").matches("anything"))
        XCTAssertTrue(StringPattern("/api/*").matches("/api/"))
        XCTAssertFalse(StringPattern("/api/*").matches("/apix"))
        XCTAssertTrue(StringPattern("*.png").matches("/a/b.png"))
        XCTAssertTrue(StringPattern("/exact").matches("/exact"))
        XCTAssertFalse(StringPattern("/exact").matches("/exact/"))
    }
}

final class CertificateTests: XCTestCase {
    func testIssuedCertificateCarriesItsIdentity() throws {
        let authority = try CertificateAuthority()
        let issued = try authority.issue(commonName: "orders", uris: ["spiffe://example.org/ns/default/sa/orders"],
                                         dnsNames: ["orders.local"], ipAddresses: ["127.0.0.1"])
        let leafPEM = String(issued.chainPEM.components(separatedBy: "-----END CERTIFICATE-----")[0]) + "-----END CERTIFICATE-----\n"
        let der = try derBytes(pem: leafPEM)
        let identity = try PeerIdentity(derEncoded: der)
        XCTAssertEqual(identity.principal, "spiffe://example.org/ns/default/sa/orders", "the SPIFFE ID comes first")
        XCTAssertEqual(identity.dnsNames, ["orders.local"])
        XCTAssertEqual(identity.subject, "CN=orders")
        XCTAssertEqual(identity.hash.count, 64)
        XCTAssertEqual(identity.forwardedClientCertificate(),
                       "Hash=\(identity.hash);Subject=\"CN=orders\";URI=spiffe://example.org/ns/default/sa/orders;DNS=orders.local")

        let dnsOnly = try PeerIdentity(derEncoded: derBytes(pem: authority.issue(commonName: "web", dnsNames: ["web.local"]).chainPEM))
        XCTAssertEqual(dnsOnly.principal, "web.local", "no URI SAN: the first DNS SAN")
        let bare = try PeerIdentity(derEncoded: derBytes(pem: authority.issue(commonName: "bare").chainPEM))
        XCTAssertEqual(bare.principal, "CN=bare", "no SAN: the subject")
        XCTAssertThrowsError(try authority.issue(commonName: "x", ipAddresses: ["not-an-ip"]))

        // A SAN with the header's separators is quoted, so it cannot pose as another element.
        let tricky = try PeerIdentity(derEncoded: derBytes(pem: authority.issue(
            commonName: "a\"b", uris: ["spiffe://x/y;DNS=evil"]).chainPEM))
        XCTAssertEqual(tricky.forwardedClientCertificate(),
                       #"Hash=\#(tricky.hash);Subject="CN=a\\\"b";URI="spiffe://x/y;DNS=evil""#,
                       "the subject's own escape (RFC 4514) is escaped again inside the quotes")
    }

    func testCertificateAuthorityRoundTripsThroughPEM() throws {
        let authority = try CertificateAuthority()
        let reread = try CertificateAuthority(certificatePEM: authority.certificatePEM, keyPEM: authority.keyPEM)
        XCTAssertEqual(reread.certificate, authority.certificate)
        let issued = try reread.issue(commonName: "x")
        XCTAssertTrue(issued.chainPEM.hasSuffix(try authority.certificatePEM), "the chain ends with the CA")
    }

    /// The first certificate of a PEM text, as DER.
    private func derBytes(pem: String) throws -> [UInt8] {
        let body = pem.components(separatedBy: "-----BEGIN CERTIFICATE-----")[1]
            .components(separatedBy: "-----END CERTIFICATE-----")[0]
            .replacingOccurrences(of: "\n", with: "")
        return Array(try XCTUnwrap(Data(base64Encoded: body)))
    }
}
