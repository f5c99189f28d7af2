import Foundation
import XCTest

/// Services spoken to in HTTP/2 (`protocol: h2c`, `h2`, `auto`), through the real binary:
/// real HTTP/2 servers (nghttpd, and a Python `h2` server that misbehaves on purpose), real
/// clients (h2load, nghttp, curl).
final class HTTP2UpstreamEndToEndTests: GatewayTestCase {
    private var peers: [PythonPeer] = []
    private var processes: [Process] = []
    private var folders: [URL] = []

    override func tearDown() {
        for peer in peers { peer.stop() }
        for process in processes where process.isRunning {
            process.terminate()
            process.waitUntilExit()
        }
        for folder in folders { try? FileManager.default.removeItem(at: folder) }
        super.tearDown()
    }

    private func misbehavingServer(_ arguments: [String] = []) throws -> Int {
        let port = try freePort()
        peers.append(try PythonPeer(script: MisbehavingHTTP2Server.script, arguments: [String(port)] + arguments, marker: marker))
        return port
    }

    private var serverOutput: String { peers.last?.output ?? "" }

    /// nghttpd serving a folder in plaintext HTTP/2, with a trailer on every answer.
    private func nghttpd(port chosen: Int? = nil) throws -> Int {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("nghttpd-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        folders.append(folder)
        try "hello from nghttpd\n".write(to: folder.appendingPathComponent("index.html"), atomically: true, encoding: .utf8)
        let port = try chosen ?? freePort()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/sbin/nghttpd")
        process.arguments = ["--no-tls", "-d", folder.path, "--trailer", "x-checksum: abc", "-a", "127.0.0.1", String(port)]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        processes.append(process)
        XCTAssertTrue(eventually { (try? RawSocket(port: port)) != nil }, "nghttpd did not start")
        return port
    }

    private func route(_ port: Int, _ upstreamProtocol: String = "h2c", routeExtra: String = "", serviceExtra: String = "") -> String {
        """
        services:
          h2:
            endpoints: [127.0.0.1:\(port)]
            protocol: \(upstreamProtocol)
        \(serviceExtra)
        routes:
          - name: h2
            match: { prefix: / }
            service: h2
        \(routeExtra)
        """
    }

    func testH2loadThroughPorticoToAnH2cUpstream() throws {
        let port = try nghttpd()
        gateway = try PorticoProcess(config: route(port))
        // Many streams on few connections: the upstream pool multiplexes them.
        let result = try runCommand("/usr/bin/h2load", ["-n", "2000", "-c", "4", "-m", "10", "\(gateway.http)/index.html"])
        XCTAssertTrue(result.output.contains("2000 succeeded, 0 failed"), result.output)
        XCTAssertTrue(result.output.contains("status codes: 2000 2xx"), result.output)
        // And from HTTP/1.1 clients too.
        let plain = try Curl.run(["\(gateway.http)/index.html"])
        XCTAssertEqual(plain.status, 200)
        XCTAssertEqual(plain.body, "hello from nghttpd\n")
    }

    func testTrailersSurviveToAnHTTP2Client() throws {
        let port = try nghttpd()
        gateway = try PorticoProcess(config: route(port))
        let result = try runCommand("/usr/bin/nghttp", ["-v", "\(gateway.http)/index.html"])
        // nghttp prints the trailer as a header received after the body.
        let lines = result.output.split(separator: "\n")
        let body = lines.firstIndex { $0.contains("hello from nghttpd") }
        let trailer = lines.firstIndex { $0.contains("x-checksum: abc") }
        XCTAssertNotNil(body, result.output)
        XCTAssertNotNil(trailer, result.output)
        if let body, let trailer { XCTAssertGreaterThan(trailer, body, "the trailer comes after the body") }
    }

    /// `python3 -c script PORT`: POSTs 200,000 bytes and a trailer to /upload over h2c, prints
    /// the answer's body.
    static let trailerClient = #"""
        import socket, sys
        import h2.config, h2.connection, h2.events
        sock = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
        connection = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
        connection.initiate_connection()
        stream = connection.get_next_available_stream_id()
        connection.send_headers(stream, [(":method", "POST"), (":scheme", "http"), (":path", "/upload"),
                                         (":authority", "localhost"), ("te", "trailers")])
        body, body_answer, done = bytes(200000), b"", False
        while body and connection.local_flow_control_window(stream) > 0:
            size = min(len(body), connection.local_flow_control_window(stream), connection.max_outbound_frame_size)
            connection.send_data(stream, body[:size])
            body = body[size:]
            sock.sendall(connection.data_to_send())
            if body and connection.local_flow_control_window(stream) == 0:
                while connection.local_flow_control_window(stream) == 0:
                    for event in connection.receive_data(sock.recv(65536)):
                        pass
                    sock.sendall(connection.data_to_send())
        connection.send_headers(stream, [("x-digest", "sha-0"), ("x-count", "200000")], end_stream=True)
        sock.sendall(connection.data_to_send())
        while not done:
            for event in connection.receive_data(sock.recv(65536)):
                if isinstance(event, h2.events.DataReceived):
                    body_answer += event.data
                    connection.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                elif isinstance(event, h2.events.StreamEnded):
                    done = True
            sock.sendall(connection.data_to_send())
        print(body_answer.decode())
        """#

    func testRequestTrailersAndABodyLargerThanAWindowReachAnH2Upstream() throws {
        let port = try misbehavingServer()
        gateway = try PorticoProcess(config: route(port))
        let result = try PythonPeer.run(script: Self.trailerClient, arguments: [String(gateway.httpPort)], timeout: 30)
        XCTAssertEqual(result.output.trimmingCharacters(in: .whitespacesAndNewlines),
                       "bytes=200000 trailers=x-digest:sha-0,x-count:200000", result.output)
    }

    /// `python3 -c script PORT`: on one h2c connection, opens /hang, resets it, then GETs
    /// /fine and prints its status.
    static let cancellingClient = #"""
        import socket, sys
        import h2.config, h2.connection, h2.errors, h2.events
        sock = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
        connection = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
        connection.initiate_connection()
        headers = lambda path: [(":method", "GET"), (":scheme", "http"), (":path", path), (":authority", "localhost")]
        hang = connection.get_next_available_stream_id()
        connection.send_headers(hang, headers("/hang"), end_stream=True)
        sock.sendall(connection.data_to_send())
        sys.stdin.readline()  # the test says when the upstream has the request
        connection.reset_stream(hang, h2.errors.ErrorCodes.CANCEL)
        fine = connection.get_next_available_stream_id()
        connection.send_headers(fine, headers("/fine"), end_stream=True)
        sock.sendall(connection.data_to_send())
        while True:
            for event in connection.receive_data(sock.recv(65536)):
                if isinstance(event, h2.events.ResponseReceived) and event.stream_id == fine:
                    print("status=" + dict(event.headers)[":status"])
                    raise SystemExit(0)
            sock.sendall(connection.data_to_send())
        """#

    func testAClientThatCancelsAStreamLeavesTheUpstreamConnectionToTheOthers() throws {
        let port = try misbehavingServer()
        gateway = try PorticoProcess(config: route(port))
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", Self.cancellingClient, String(gateway.httpPort)]
        let input = Pipe()
        let output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        try process.run()
        XCTAssertTrue(eventually { self.serverOutput.contains("stream /hang") }, serverOutput)
        input.fileHandleForWriting.write(Data("go\n".utf8))
        let printed = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        XCTAssertEqual(printed.trimmingCharacters(in: .whitespacesAndNewlines), "status=200")
        // The cancelled stream was reset upstream; its connection carried the next request.
        XCTAssertEqual(serverOutput.components(separatedBy: "connection ").count - 1, 1, serverOutput)
    }

    func testAnUpstreamResetIs502() throws {
        let port = try misbehavingServer()
        gateway = try PorticoProcess(config: route(port))
        // One client connection (one event loop, one upstream pool): the reset takes one
        // stream, not the upstream connection, which carries the other request.
        let result = try runCommand("/usr/bin/nghttp", ["-v", "\(gateway.http)/reset", "\(gateway.http)/fine"])
        XCTAssertTrue(result.output.contains(":status: 502"), result.output)
        XCTAssertTrue(result.output.contains(":status: 200"), result.output)
        XCTAssertEqual(serverOutput.components(separatedBy: "connection ").count - 1, 1, serverOutput)
    }

    /// NIO's checks of an upstream's header blocks and body lengths are off on upstream
    /// connections (`HTTP2UpstreamPool`); Portico's own refuse what they refused.
    func testAnAnswerWithAFieldHTTP2ForbidsIs502() throws {
        let port = try misbehavingServer()
        gateway = try PorticoProcess(config: route(port))
        XCTAssertEqual(try Curl.run(["\(gateway.http)/upper-name"]).status, 502)
        XCTAssertEqual(try Curl.run(["\(gateway.http)/connection-field"]).status, 502)
        XCTAssertEqual(try Curl.run(["\(gateway.http)/fine"]).status, 200, "the upstream connection serves on")
    }

    /// A body that ends short of its `content-length`, or runs past it in its first frame,
    /// never reaches the client as a whole answer: a client that already has the head sees
    /// its connection end short.
    func testAnAnswerWhoseBodyDisagreesWithItsLengthIsNotRelayedWhole() throws {
        let port = try misbehavingServer()
        gateway = try PorticoProcess(config: route(port))
        for path in ["/short-body", "/long-body"] {
            let response = try Curl.run(["\(gateway.http)\(path)"])
            XCTAssertTrue(response.status == 502 || response.exitCode != 0, "\(path): \(response)")
            XCTAssertNotEqual(response.body, "12345", path)
        }
        // The answer to a HEAD carries the length of a body it does not have.
        let head = try Curl.run(["-I", "\(gateway.http)/head-length"])
        XCTAssertEqual(head.status, 200, "\(head)")
        XCTAssertEqual(head.exitCode, 0, "\(head)")
    }

    func testARefusedStreamIsRetried() throws {
        let port = try misbehavingServer()
        gateway = try PorticoProcess(config: route(port, routeExtra: "    retries: { attempts: 1, retryOn: [refused-stream] }"))
        let response = try Curl.run(["\(gateway.http)/refuse-once"])
        XCTAssertEqual(response.status, 200)
        XCTAssertEqual(response.body, "again")
    }

    func testARefusedStreamWithoutRetriesIs502() throws {
        let port = try misbehavingServer()
        gateway = try PorticoProcess(config: route(port))
        XCTAssertEqual(try Curl.run(["\(gateway.http)/refuse-once"]).status, 502)
    }

    func testGoAwayLetsTheStartedStreamFinishAndRetriesTheOthersOnANewConnection() throws {
        let port = try misbehavingServer()
        gateway = try PorticoProcess(config: route(port, routeExtra: "    retries: { attempts: 2, retryOn: [refused-stream] }"))
        // Two streams at once on one client connection (one event loop, one upstream pool):
        // the upstream takes the first, sends GOAWAY naming it, and never starts the second.
        let result = try runCommand("/usr/bin/h2load", ["-n", "2", "-c", "1", "-m", "2", "\(gateway.http)/goaway"])
        XCTAssertTrue(result.output.contains("2 succeeded, 0 failed"), result.output + serverOutput)
        XCTAssertTrue(result.output.contains("status codes: 2 2xx"), result.output)
        XCTAssertTrue(serverOutput.contains("connection 2"), "the refused stream went to a new connection: \(serverOutput)")
    }

    func testAStalledWindowTimesOutWithoutWedgingTheGateway() throws {
        let port = try misbehavingServer(["stall"])
        gateway = try PorticoProcess(config: route(port, routeExtra: "    timeout: 1s") + """

            limits:
              maxRequestBody: 64MiB
            """)
        // The upstream takes 100 bytes of a 4 MiB body and never opens its window again: the
        // body waits (the client's reads are held, not buffered), and the route's timeout ends it.
        let started = Date()
        let response = try Curl.run(["-X", "POST", "--data-binary", "@\(try bodyFile(4 << 20))", "\(gateway.http)/upload"])
        XCTAssertEqual(response.status, 504)
        XCTAssertLessThan(Date().timeIntervalSince(started), 10)
        XCTAssertEqual(try Curl.run(["\(gateway.admin)/ready"]).status, 200, "the gateway still answers")
    }

    func testHealthChecksSpeakHTTP2ToAnH2cService() throws {
        let port = try freePort()
        gateway = try PorticoProcess(config: route(port, serviceExtra: """
                healthCheck: { path: /index.html, interval: 200ms, timeout: 1s, healthyThreshold: 1, unhealthyThreshold: 1 }
            """))
        // Nothing listens yet: the endpoint fails its checks. Once nghttpd serves the port, it
        // passes them only if they are spoken in HTTP/2 (nghttpd answers HTTP/1.1 with GOAWAY).
        XCTAssertTrue(eventually { self.endpointHealth() == false }, "the endpoint never failed its checks")
        _ = try nghttpd(port: port)
        XCTAssertTrue(eventually { self.endpointHealth() == true }, "the endpoint never passed its checks")
        XCTAssertEqual(try Curl.run(["\(gateway.http)/index.html"]).status, 200)
    }

    /// `healthy` of the service's only endpoint, as the admin API reports it.
    private func endpointHealth() -> Bool? {
        guard let body = try? Curl.run(["\(gateway.admin)/services"]).body,
              let json = try? JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any],
              let services = json["services"] as? [[String: Any]],
              let endpoints = services.first?["endpoints"] as? [[String: Any]] else { return nil }
        return endpoints.first?["healthy"] as? Bool
    }

    func testAnH2cFunctionIsReadyWhenItsReadinessPathAnswersInHTTP2() throws {
        gateway = try PorticoProcess(config: "routes: []", prepare: { root in
            let folder = root.appendingPathComponent("Functions/static")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            try "ready\n".write(to: folder.appendingPathComponent("ready.html"), atomically: true, encoding: .utf8)
            try "served over h2c\n".write(to: folder.appendingPathComponent("index.html"), atomically: true, encoding: .utf8)
            // nghttpd speaks only HTTP/2: the readiness probe must too, or the worker never counts as ready.
            try """
                command: ["sh", "-c", "exec /usr/sbin/nghttpd --no-tls -d . -a 127.0.0.1 $PORT # \(self.marker)"]
                protocol: h2c
                readiness: { path: /ready.html }
                routes:
                  - prefix: /static/
                    rewrite: /
                """.write(to: folder.appendingPathComponent("function.yaml"), atomically: true, encoding: .utf8)
        })
        let response = try Curl.run(["\(gateway.http)/static/index.html"])
        XCTAssertEqual(response.status, 200, gateway.stderr)
        XCTAssertEqual(response.body, "served over h2c\n")
    }

    func testAutoSpeaksHTTP1ToAnEndpointThatChoosesIt() throws {
        let certificates = try TestCertificates.make(name: "localhost")
        let port = try freePort()
        // Python's TLS server with ALPN offering only http/1.1.
        let script = """
            import http.server, ssl, sys
            class Handler(http.server.BaseHTTPRequestHandler):
                protocol_version = "HTTP/1.1"
                def do_GET(self):
                    body = b"over http/1.1"
                    self.send_response(200)
                    self.send_header("content-length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                def log_message(self, *args):
                    pass
            server = http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[2])), Handler)
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(sys.argv[3], sys.argv[4])
            context.set_alpn_protocols(["http/1.1"])
            server.socket = context.wrap_socket(server.socket, server_side=True)
            print("ready", flush=True)
            server.serve_forever()
            """
        peers.append(try PythonPeer(script: script, arguments: [String(port), certificates.certificate, certificates.key],
                                    marker: marker))
        gateway = try PorticoProcess(config: route(port, "auto").replacingOccurrences(
            of: "protocol: auto", with: "protocol: auto\n    tls: { ca: \(certificates.ca), serverName: localhost }"))
        for _ in 0..<3 {
            let response = try Curl.run(["--http2-prior-knowledge", "\(gateway.http)/"])
            XCTAssertEqual(response.status, 200)
            XCTAssertEqual(response.body, "over http/1.1")
        }
    }

    func testAnH2ServiceWhoseEndpointRefusesH2IsAConnectFailure() throws {
        let port = try misbehavingServer()
        // `h2` needs TLS with ALPN h2; a plaintext endpoint fails the handshake: 502, not a hang.
        let certificates = try TestCertificates.make(name: "localhost")
        gateway = try PorticoProcess(config: route(port, "h2").replacingOccurrences(
            of: "protocol: h2", with: "protocol: h2\n    tls: { ca: \(certificates.ca), serverName: localhost }"))
        let started = Date()
        XCTAssertEqual(try Curl.run(["\(gateway.http)/"]).status, 502)
        XCTAssertLessThan(Date().timeIntervalSince(started), 10)
    }
}
