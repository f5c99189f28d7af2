import PorticoConfig
import XCTest

/// `tcp:` listeners and a TLS listener's `certificates:`: what a valid file turns into, and
/// each rejection as `portico check` prints it (file, line, column, key, message).
final class TCPConfigTests: XCTestCase {
    private let services = """
        services:
          pg: { endpoints: [127.0.0.1:5432] }
          pg-tls: { endpoints: [127.0.0.1:5433] }
          internal-tls: { endpoints: [127.0.0.1:5434] }
        """

    func testTCPListenersParse() throws {
        let config = try ConfigLoader.parse(yaml: """
            listeners:
              - address: 127.0.0.1:8080
            \(services)
            tcp:
              - name: postgres
                address: 127.0.0.1:15432
                service: pg
                idleTimeout: 10m
                maxConnections: 100
              - name: passthrough
                address: 127.0.0.1:8444
                sni:
                  - { names: [DB.example.com.], service: pg-tls }
                  - { names: ["*.internal.example"], service: internal-tls }
                default: pg
                helloTimeout: 2s
            """, file: "gateway.yaml")
        XCTAssertEqual(config.tcp, [
            TCPListenerConfig(name: "postgres", address: HostPort(host: "127.0.0.1", port: 15432), routing: .service("pg"),
                              idleTimeout: .seconds(600), maxConnections: 100),
            TCPListenerConfig(name: "passthrough", address: HostPort(host: "127.0.0.1", port: 8444),
                              routing: .serverName(routes: [ServerNameRoute(names: ["db.example.com"], service: "pg-tls"),
                                                            ServerNameRoute(names: ["*.internal.example"], service: "internal-tls")],
                                                   defaultService: "pg"),
                              helloTimeout: .seconds(2)),
        ])
        XCTAssertEqual(config.tcp[1].idleTimeout, .seconds(3600), "an hour by default, as Envoy's tcp_proxy")
        XCTAssertTrue(config.renderJSON().contains("\"helloTimeout\" : \"2s\""))
    }

    func testATCPOnlyConfigNeedsNoHTTPListener() throws {
        let config = try ConfigLoader.parse(yaml: """
            \(services)
            tcp:
              - { name: postgres, address: 127.0.0.1:15432, service: pg }
            """, file: "gateway.yaml")
        XCTAssertEqual(config.listeners, [])
        XCTAssertEqual(config.tcp.map(\.name), ["postgres"])
    }

    private func rejection(_ tcp: String, file: StaticString = #filePath, line: UInt = #line) -> String {
        rejectionText("""
            listeners:
              - { name: public, address: 127.0.0.1:8080 }
            admin: { address: 127.0.0.1:9901 }
            \(services)
            tcp:
            \(tcp)
            """, file: file, line: line)
    }

    func testUnknownKeySuggestsTheClosestOne() {
        XCTAssertEqual(rejection("""
              - { address: 127.0.0.1:15432, service: pg, idleTimout: 5m }
            """),
            "gateway.yaml:9:46: tcp[0].idleTimout: unknown key 'idleTimout' (did you mean 'idleTimeout'?)")
    }

    func testUnknownService() {
        XCTAssertEqual(rejection("""
              - { address: 127.0.0.1:15432, service: pq }
            """),
            "gateway.yaml:9:42: tcp[0].service: unknown service 'pq' (did you mean 'pg'?)")
    }

    func testUnknownServiceInAnSNIRouteAndTheDefault() {
        XCTAssertEqual(rejection("""
              - address: 127.0.0.1:8444
                sni:
                  - { names: [db.example.com], service: pg-tsl }
                default: nope
            """),
            """
            gateway.yaml:11:45: tcp[0].sni[0].service: unknown service 'pg-tsl' (did you mean 'pg-tls'?)
            gateway.yaml:12:14: tcp[0].default: unknown service 'nope' (declared: pg, pg-tls, internal-tls)
            """)
    }

    func testBadAddress() {
        XCTAssertEqual(rejection("""
              - { address: "localhost", service: pg }
            """),
            "gateway.yaml:9:16: tcp[0].address: expected an address like 127.0.0.1:8080, localhost:80 or \"[::1]:8443\" (port 0-65535), got 'localhost'")
    }

    func testAddressUsedByAnHTTPListenerTheAdminOrAnotherTCPListener() {
        XCTAssertEqual(rejection("""
              - { name: a, address: 127.0.0.1:8080, service: pg }
              - { name: b, address: 127.0.0.1:9901, service: pg }
              - { name: c, address: 127.0.0.1:7000, service: pg }
              - { name: d, address: 127.0.0.1:7000, service: pg }
            """),
            """
            gateway.yaml:9:25: tcp[0].address: address 127.0.0.1:8080 is already used by listener 'public'
            gateway.yaml:10:25: tcp[1].address: address 127.0.0.1:9901 is already used by admin
            gateway.yaml:12:25: tcp[3].address: address 127.0.0.1:7000 is already used by tcp listener 'c'
            """)
    }

    func testNameUsedByAnHTTPListener() {
        XCTAssertEqual(rejection("""
              - { name: public, address: 127.0.0.1:15432, service: pg }
            """),
            "gateway.yaml:9:13: tcp[0].name: listener name 'public' is already used by listener 'public'")
    }

    func testServiceAndSNIAreExclusiveAndOneIsNeeded() {
        XCTAssertEqual(rejection("""
              - address: 127.0.0.1:15432
                service: pg
                sni: [{ names: [a.example], service: pg }]
              - address: 127.0.0.1:15433
            """),
            """
            gateway.yaml:11:5: tcp[0].sni: a tcp listener sends every connection to 'service' or routes by 'sni', not both
            gateway.yaml:12:5: tcp[1].service: a tcp listener needs 'service' (every connection goes there) or 'sni' (routes by the TLS server name)
            """)
    }

    func testDefaultAndHelloTimeoutNeedSNI() {
        XCTAssertEqual(rejection("""
              - { address: 127.0.0.1:15432, service: pg, default: pg, helloTimeout: 1s }
            """),
            """
            gateway.yaml:9:46: tcp[0].default: 'default' is where connections with an unknown server name go; it needs 'sni'
            gateway.yaml:9:59: tcp[0].helloTimeout: 'helloTimeout' bounds the wait for a TLS ClientHello; it needs 'sni'
            """)
    }

    func testWildcardsAreOneLeadingLabel() {
        XCTAssertEqual(rejection("""
              - address: 127.0.0.1:8444
                sni:
                  - { names: ["db.*.example", "*example.com", "*.com", "a..b", "", "x:443"], service: pg }
            """),
            """
            gateway.yaml:11:19: tcp[0].sni[0].names[0]: only a whole first label '*.' may be a wildcard, as in *.example.com, got 'db.*.example'
            gateway.yaml:11:35: tcp[0].sni[0].names[1]: only a whole first label '*.' may be a wildcard, as in *.example.com, got '*example.com'
            gateway.yaml:11:51: tcp[0].sni[0].names[2]: a wildcard needs a domain of at least two labels after '*.', as in *.example.com, got '*.com'
            gateway.yaml:11:60: tcp[0].sni[0].names[3]: expected a server name such as db.example.com or *.example.com (letters, digits, '-' and '_' between dots), got 'a..b'
            gateway.yaml:11:68: tcp[0].sni[0].names[4]: expected a server name such as db.example.com, got ''
            gateway.yaml:11:72: tcp[0].sni[0].names[5]: expected a server name such as db.example.com or *.example.com (letters, digits, '-' and '_' between dots), got 'x:443'
            """)
    }

    func testANameIsRoutedOnce() {
        XCTAssertEqual(rejection("""
              - address: 127.0.0.1:8444
                sni:
                  - { names: [db.example.com], service: pg }
                  - { names: [DB.example.com], service: pg-tls }
            """),
            "gateway.yaml:12:19: tcp[0].sni[1].names[0]: server name 'db.example.com' is already listed in tcp[0].sni[0]")
    }

    func testMaxConnectionsAndDurations() {
        XCTAssertEqual(rejection("""
              - { address: 127.0.0.1:15432, service: pg, maxConnections: 0, idleTimeout: 0s }
            """),
            """
            gateway.yaml:9:62: tcp[0].maxConnections: must be at least 1, got 0
            gateway.yaml:9:78: tcp[0].idleTimeout: must be longer than 0s
            """)
    }

    func testEmptySNIList() {
        XCTAssertEqual(rejection("""
              - { address: 127.0.0.1:8444, sni: [] }
            """),
            "gateway.yaml:9:37: tcp[0].sni: needs at least one { names, service } entry")
    }

    func testAnSNIRouteNeedsNamesAndAService() {
        XCTAssertEqual(rejection("""
              - address: 127.0.0.1:8444
                sni:
                  - { service: pg }
                  - { names: [] , service: pg }
                  - { names: [a.example] }
            """),
            """
            gateway.yaml:11:9: tcp[0].sni[0].names: missing required key 'names'
            gateway.yaml:12:18: tcp[0].sni[1].names: needs at least one server name
            gateway.yaml:13:9: tcp[0].sni[2].service: missing required key 'service'
            """)
    }

    // MARK: A TLS listener's certificates

    func testListenerCertificatesParse() throws {
        let config = try ConfigLoader.parse(yaml: """
            listeners:
              - address: 127.0.0.1:8443
                tls:
                  certificates:
                    - { names: [a.example], certificate: a.pem, key: a-key.pem }
                    - { names: ["*.b.example", b.example], certificate: b.pem, key: b-key.pem }
            """, file: "gateway.yaml")
        let tls = try XCTUnwrap(config.listeners[0].tls)
        XCTAssertEqual(tls.certificate, "a.pem", "the first certificate serves names the list does not have")
        XCTAssertEqual(tls.key, "a-key.pem")
        XCTAssertEqual(tls.sniCertificates, [
            ListenerCertificateConfig(names: ["a.example"], certificate: "a.pem", key: "a-key.pem"),
            ListenerCertificateConfig(names: ["*.b.example", "b.example"], certificate: "b.pem", key: "b-key.pem"),
        ])
    }

    func testListenerCertificatesKeepAnExplicitDefault() throws {
        let config = try ConfigLoader.parse(yaml: """
            listeners:
              - address: 127.0.0.1:8443
                tls:
                  certificate: default.pem
                  key: default-key.pem
                  certificates: [{ names: [a.example], certificate: a.pem, key: a-key.pem }]
            """, file: "gateway.yaml")
        XCTAssertEqual(config.listeners[0].tls?.certificate, "default.pem")
        XCTAssertEqual(config.listeners[0].tls?.sniCertificates.count, 1)
    }

    func testListenerCertificatesRejections() {
        XCTAssertEqual(rejectionText("""
            listeners:
              - address: 127.0.0.1:8443
                tls:
                  certificates:
                    - { names: [a.example], certificate: a.pem }
                    - { names: [A.example, "*"], certificate: b.pem, key: b-key.pem, chain: c.pem }
            """),
            """
            gateway.yaml:5:11: listeners[0].tls.certificates[0].key: each certificate needs both 'certificate' and 'key'; 'key' is missing
            gateway.yaml:6:21: listeners[0].tls.certificates[1].names[0]: server name 'a.example' is already listed in listeners[0].tls.certificates[0]
            gateway.yaml:6:32: listeners[0].tls.certificates[1].names[1]: a wildcard needs a domain of at least two labels after '*.', as in *.example.com, got '*'
            gateway.yaml:6:74: listeners[0].tls.certificates[1].chain: unknown key 'chain' (expected one of names, certificate, key)
            """)
    }
}
