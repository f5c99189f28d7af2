import Foundation
import PorticoConfig
import XCTest

/// `jwt` and `authorization` policies, and a TLS listener's client-certificate settings.
final class SecurityConfigTests: XCTestCase {
    func testJWTAuthorizationAndMutualTLSParse() throws {
        let config = try ConfigLoader.parse(yaml: """
            listeners:
              - name: mesh
                address: 127.0.0.1:8443
                tls: { certificate: c.pem, key: k.pem, clientCA: ca.pem, mode: permissive }
              - name: edge
                address: 127.0.0.1:9443
                tls: { certificate: c.pem, key: k.pem, clientCA: ca.pem }
            policies:
              public-jwt:
                jwt:
                  issuer: https://auth.example.com
                  audiences: [api]
                  jwks: config/jwks.json
                  forwardHeader: X-JWT-Payload
                  claimToHeaders: [{ claim: sub, header: x-user }]
              query-jwt:
                jwt: { issuer: i, jwksUri: "https://auth.example.com/keys", from: { query: access_token },
                       optional: true, clockSkew: 0s, forwardOriginalToken: true, cacheDuration: 1m, minRefreshInterval: 5s }
              api-authz:
                authorization:
                  rules:
                    - from: { principals: ["spiffe://example.org/ns/default/sa/orders"] }
                      to: { methods: [get, POST], paths: ["/api/*"] }
                    - when: { claims: { scope: admin, groups: [ops, sre] } }
            routes:
              - match: { prefix: / }
                directResponse: { status: 200 }
                policies: [public-jwt, api-authz]
            """, file: "gateway.yaml")
        XCTAssertEqual(config.listeners[0].tls, ListenerTLSConfig(certificate: "c.pem", key: "k.pem", clientCA: "ca.pem", mode: .permissive))
        XCTAssertEqual(config.listeners[1].tls?.mode, .strict, "strict is the default with a clientCA")
        XCTAssertEqual(config.policies[0].kind, .jwt(JWTConfig(
            issuer: "https://auth.example.com", audiences: ["api"], keys: .file("config/jwks.json"),
            forwardHeader: "x-jwt-payload", claimToHeaders: [.init(claim: "sub", header: "x-user")])))
        XCTAssertEqual(config.policies[1].kind, .jwt(JWTConfig(
            issuer: "i", keys: .url("https://auth.example.com/keys"), from: .query("access_token"), clockSkew: .seconds(0),
            optional: true, forwardOriginalToken: true, cacheDuration: .seconds(60), minRefreshInterval: .seconds(5))))
        XCTAssertEqual(config.policies[2].kind, .authorization(AuthorizationConfig(rules: [
            .init(principals: ["spiffe://example.org/ns/default/sa/orders"], methods: ["GET", "POST"], paths: ["/api/*"]),
            .init(claims: [.init(name: "scope", values: ["admin"]), .init(name: "groups", values: ["ops", "sre"])]),
        ])))
        // The rendered config shows the new settings (the admin API's GET /config).
        let json = config.renderJSON()
        XCTAssertTrue(json.contains("\"clientCA\""), json)
        XCTAssertTrue(json.contains("\"jwksUri\""), json)
        XCTAssertTrue(json.contains("spiffe://example.org/ns/default/sa/orders"), json)
    }

    func testListenerCipherSuites() throws {
        let config = try ConfigLoader.parse(yaml: """
            listeners:
              - address: 127.0.0.1:8443
                tls: { certificate: c.pem, key: k.pem }
              - address: 127.0.0.1:9443
                tls:
                  certificate: c.pem
                  key: k.pem
                  cipherSuites: [ECDHE-RSA-CHACHA20-POLY1305, ECDHE-RSA-AES128-SHA]
            routes:
              - match: { prefix: / }
                directResponse: { status: 200 }
            """, file: "gateway.yaml")
        XCTAssertEqual(config.listeners[0].tls?.cipherSuites, [
            "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384",
            "ECDHE-RSA-AES256-GCM-SHA384", "ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305",
        ], "the default: ECDHE with AES-GCM or ChaCha20-Poly1305 only")
        XCTAssertEqual(config.listeners[1].tls?.cipherSuites, ["ECDHE-RSA-CHACHA20-POLY1305", "ECDHE-RSA-AES128-SHA"])
        XCTAssertTrue(config.renderJSON().contains("ECDHE-RSA-CHACHA20-POLY1305"))

        XCTAssertEqual(rejectionText("""
            listeners:
              - address: 127.0.0.1:8443
                tls:
                  certificate: c.pem
                  key: k.pem
                  cipherSuites: [ecdhe-rsa-aes128-gcm-sha256, RC4-SHA, TLS_AES_128_GCM_SHA256, AES128-SHA, AES128-SHA, [x]]
              - address: 127.0.0.1:9443
                tls: { certificate: c.pem, key: k.pem, cipherSuites: [] }
              - address: 127.0.0.1:9444
                tls: { certificate: c.pem, key: k.pem, cipherSuites: ECDHE-RSA-AES128-GCM-SHA256 }
            routes:
              - match: { prefix: / }
                directResponse: { status: 200 }
            """), """
            gateway.yaml:6:22: listeners[0].tls.cipherSuites[0]: unknown TLS 1.2 cipher suite 'ecdhe-rsa-aes128-gcm-sha256' \
            (did you mean 'ECDHE-RSA-AES128-GCM-SHA256'?)
            gateway.yaml:6:51: listeners[0].tls.cipherSuites[1]: unknown TLS 1.2 cipher suite 'RC4-SHA' \
            (OpenSSL names such as ECDHE-ECDSA-AES128-GCM-SHA256)
            gateway.yaml:6:60: listeners[0].tls.cipherSuites[2]: 'TLS_AES_128_GCM_SHA256' is a TLS 1.3 suite; \
            TLS 1.3 always offers its three AEAD suites, and this list is for TLS 1.2
            gateway.yaml:6:96: listeners[0].tls.cipherSuites[4]: 'AES128-SHA' is listed twice
            gateway.yaml:6:108: listeners[0].tls.cipherSuites[5]: expected a cipher suite name, got a list
            gateway.yaml:8:58: listeners[1].tls.cipherSuites: needs at least one cipher suite; leave 'cipherSuites' out for the default
            gateway.yaml:10:58: listeners[2].tls.cipherSuites: expected a list of cipher suite names such as \
            ECDHE-ECDSA-AES128-GCM-SHA256, got 'ECDHE-RSA-AES128-GCM-SHA256'
            """)
    }

    func testBadJWTAndAuthorizationValuesAreEachReported() {
        let text = rejectionText("""
            listeners:
              - address: 127.0.0.1:8080
            policies:
              a:
                jwt: { jwks: k.json, jwksUri: "https://x/keys", audiences: api }
              b:
                jwt: { issuer: "", jwksUri: "ftp://x/keys", forwardHeader: "bad header" }
              c:
                authorization: { rules: [ {}, { to: { verbs: [GET] } } ] }
              d:
                authorization: {}
              e:
                jwt: { issuer: i, jwks: k.json, from: { header: x-token, query: t } }
              f:
                authorization: { rules: [ { to: {} }, { from: { principals: [] } } ] }
              g:
                jwt: { issuer: i, jwks: k.json, minRefreshInterval: 0s, forwardHeader: Content-Length,
                       claimToHeaders: [{ claim: sub, header: x-forwarded-client-cert }] }
            """)
        XCTAssertTrue(text.contains("gateway.yaml:5:10: policies.a.jwt.issuer: a jwt policy needs 'issuer'"), text)
        XCTAssertTrue(text.contains("gateway.yaml:5:35: policies.a.jwt.jwksUri: give either 'jwks' (a file) or 'jwksUri' (a URL), not both"), text)
        XCTAssertTrue(text.contains("gateway.yaml:5:64: policies.a.jwt.audiences: expected a list of audiences, got 'api'"), text)
        XCTAssertTrue(text.contains("gateway.yaml:7:20: policies.b.jwt.issuer: expected an issuer"), text)
        XCTAssertTrue(text.contains("gateway.yaml:7:33: policies.b.jwt.jwksUri: expected an http:// or https:// URL, got 'ftp://x/keys'"), text)
        XCTAssertTrue(text.contains("policies.b.jwt.forwardHeader: expected a header name"), text)
        XCTAssertTrue(text.contains("gateway.yaml:9:31: policies.c.authorization.rules[0]: an empty rule would allow every request"), text)
        XCTAssertTrue(text.contains("gateway.yaml:9:43: policies.c.authorization.rules[1].to.verbs: unknown key 'verbs'"), text)
        XCTAssertTrue(text.contains("gateway.yaml:11:20: policies.d.authorization.rules: an authorization policy needs 'rules'"), text)
        XCTAssertTrue(text.contains("policies.e.jwt.from.query: give either 'header'"), text)
        XCTAssertTrue(text.contains("gateway.yaml:15:31: policies.f.authorization.rules[0]: an empty rule would allow every request"), text)
        XCTAssertFalse(text.contains("policies.f.authorization.rules[1]"), "an empty principal list allows nobody; not an error")
        XCTAssertTrue(text.contains("policies.g.jwt.minRefreshInterval: must be longer than 0s"), text)
        XCTAssertTrue(rejectionText("""
            listeners:
              - address: 127.0.0.1:8080
            policies:
              h:
                jwt: { issuer: i, jwks: k.json, minRefreshInterval: 500ms }
            """).contains("policies.h.jwt.minRefreshInterval: must be at least 1s, got 500ms"))
        XCTAssertTrue(text.contains("policies.g.jwt.forwardHeader: 'content-length' is set by the gateway"), text)
        XCTAssertTrue(text.contains("policies.g.jwt.claimToHeaders[0].header: 'x-forwarded-client-cert' is set by the gateway"), text)
    }

    func testClientCertificateModeNeedsAClientCA() {
        let text = rejectionText("""
            listeners:
              - address: 127.0.0.1:8443
                tls: { certificate: c.pem, key: k.pem, mode: strict }
              - address: 127.0.0.1:9443
                tls: { certificate: c.pem, key: k.pem, clientCA: ca.pem, mode: mutual }
            """)
        XCTAssertTrue(text.contains("gateway.yaml:3:50: listeners[0].tls.mode: 'mode' is about client certificates; it needs 'clientCA'"), text)
        XCTAssertTrue(text.contains("gateway.yaml:5:68: listeners[1].tls.mode: expected one of strict, permissive, got 'mutual'"), text)
    }
}
