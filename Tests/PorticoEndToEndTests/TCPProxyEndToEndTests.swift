import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// `tcp:` listeners with real servers behind them: Redis with its own client and benchmark, and
/// a Python server for half-closes, refusals, the connection limit, the idle timeout and reloads.
final class TCPProxyEndToEndTests: GatewayTestCase {
    private var children: [ChildServer] = []
    private var scratch: URL!

    override func setUpWithError() throws {
        try super.setUpWithError()
        scratch = FileManager.default.temporaryDirectory.appendingPathComponent("portico-tcp-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        try Self.backendScript.write(to: scratch.appendingPathComponent("backend.py"), atomically: true, encoding: .utf8)
    }

    override func tearDown() {
        for child in children { child.stop() }
        try? FileManager.default.removeItem(at: scratch)
        super.tearDown()
    }

    /// `echo` answers what it read, then after the client's FIN sends its own; with a name it
    /// first says that name. `count` answers only once the client's FIN came, with how many
    /// bytes it read. `fin-first` says hello, sends FIN at once, and appends what it still
    /// reads to the file named. `stall` accepts and never reads.
    private static let backendScript = """
        import socket, sys, threading
        port, mode = int(sys.argv[1]), sys.argv[2]
        name = sys.argv[3] if len(sys.argv) > 3 else ""
        server = socket.socket()
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", port))
        server.listen(64)
        def serve(conn):
            try:
                if mode == "echo":
                    if name:
                        conn.sendall(name.encode() + b"\\n")
                    while True:
                        data = conn.recv(65536)
                        if not data:
                            break
                        conn.sendall(data)
                    conn.shutdown(socket.SHUT_WR)
                elif mode == "stall":
                    threading.Event().wait()
                elif mode == "count":
                    total = 0
                    while True:
                        data = conn.recv(65536)
                        if not data:
                            break
                        total += len(data)
                    conn.sendall(b"got %d bytes" % total)
                else:
                    conn.sendall(b"hello\\n")
                    conn.shutdown(socket.SHUT_WR)
                    got = b""
                    while True:
                        data = conn.recv(65536)
                        if not data:
                            break
                        got += data
                    with open(name, "ab") as f:
                        f.write(got + b"\\n")
            except OSError:
                pass
            finally:
                conn.close()
        while True:
            conn, _ = server.accept()
            threading.Thread(target=serve, args=(conn,), daemon=True).start()
        """

    private func backend(_ mode: String = "echo", name: String = "") throws -> Int {
        let port = try freePort()
        children.append(try ChildServer("/usr/bin/env", ["python3", scratch.appendingPathComponent("backend.py").path,
                                                         String(port), mode] + (name.isEmpty ? [] : [name]), port: port))
        return port
    }

    private func startGateway(services: String, tcp: String) throws {
        gateway = try PorticoProcess(config: """
            accessLog: { format: json }
            services:
            \(services)
            tcp:
            \(tcp)
            """)
    }

    private func accessLogLine(listener: String) -> [String: Any]? {
        gateway.accessLogLines.first { $0["listener"] as? String == listener }
    }

    // MARK: Redis

    func testRedisThroughATCPListener() throws {
        let redisPort = try freePort()
        children.append(try ChildServer("/usr/bin/redis-server", [
            "--port", String(redisPort), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
        ], port: redisPort))
        let port = try freePort()
        try startGateway(services: "  redis: { endpoints: [127.0.0.1:\(redisPort)] }",
                         tcp: "  - { name: redis, address: 127.0.0.1:\(port), service: redis }")
        let cli = "/usr/bin/redis-cli"
        XCTAssertEqual(try runBounded(cli, ["-p", String(port), "PING"]).output, "PONG\n")
        XCTAssertEqual(try runBounded(cli, ["-p", String(port), "SET", "greeting", "hello"]).output, "OK\n")
        XCTAssertEqual(try runBounded(cli, ["-p", String(port), "GET", "greeting"]).output, "hello\n")
        // A 2 MiB value, both ways, in one connection each.
        let large = Data(repeating: UInt8(ascii: "v"), count: 2 * 1024 * 1024)
        XCTAssertEqual(try runBounded(cli, ["-p", String(port), "-x", "SET", "large"], input: large).output, "OK\n")
        XCTAssertEqual(try runBounded(cli, ["-p", String(port), "STRLEN", "large"]).output, "2097152\n")
        let fetched = try runBounded(cli, ["-p", String(port), "GET", "large"]).output
        XCTAssertEqual(fetched.count, 2 * 1024 * 1024 + 1)
        XCTAssertTrue(fetched.hasPrefix("vvvv"))

        let benchmark = try runBounded("/usr/bin/redis-benchmark",
                                       ["-p", String(port), "-n", "2000", "-c", "4", "-q", "-t", "set,get"], timeout: 60)
        XCTAssertEqual(benchmark.status, 0, benchmark.output)
        XCTAssertTrue(benchmark.output.contains("SET: ") && benchmark.output.contains("GET: "), benchmark.output)
        XCTAssertFalse(benchmark.output.lowercased().contains("error"), benchmark.output)

        XCTAssertTrue(eventually { self.gateway.metric("portico_tcp_active_connections{listener=\"redis\"}") == 0 })
        XCTAssertGreaterThanOrEqual(gateway.metric("portico_tcp_connections_total{listener=\"redis\"}"), 9)
        XCTAssertGreaterThan(gateway.metric("portico_tcp_received_bytes_total{listener=\"redis\"}"), 2 * 1024 * 1024)
        XCTAssertGreaterThan(gateway.metric("portico_tcp_sent_bytes_total{listener=\"redis\"}"), 2 * 1024 * 1024)
        XCTAssertTrue(eventually { self.accessLogLine(listener: "redis") != nil }, gateway.stdout)
        let line = try XCTUnwrap(accessLogLine(listener: "redis"))
        XCTAssertEqual(line["protocol"] as? String, "tcp")
        XCTAssertEqual(line["backend"] as? String, "redis")
        XCTAssertEqual(line["upstream"] as? String, "127.0.0.1:\(redisPort)")
        XCTAssertEqual(line["end"] as? String, "completed")
        XCTAssertEqual(line["bytes_in"] as? Int, 14, "PING as redis-cli sends it")
        XCTAssertEqual(line["bytes_out"] as? Int, 7, "+PONG and CRLF")
    }

    // MARK: Half-close

    func testTheClientsFINReachesTheUpstreamWhichStillAnswers() throws {
        let counter = try backend("count")
        let port = try freePort()
        try startGateway(services: "  echo: { endpoints: [127.0.0.1:\(counter)] }",
                         tcp: "  - { name: echo, address: 127.0.0.1:\(port), service: echo }")
        let socket = try RawSocket(port: port)
        socket.send("first half")
        socket.shutdownWrite()
        // The server answers only once it has seen the FIN; its answer comes back over the
        // half the client kept open, and then its own FIN.
        XCTAssertEqual(String(decoding: socket.receive { $0.count >= 12 }, as: UTF8.self), "got 10 bytes")
        XCTAssertTrue(socket.peerClosed())
        XCTAssertTrue(eventually { self.accessLogLine(listener: "echo")?["end"] as? String == "completed" }, gateway.stdout)
    }

    func testTheUpstreamsFINReachesTheClientWhichStillSends() throws {
        let received = scratch.appendingPathComponent("received.txt")
        let finFirst = try backend("fin-first", name: received.path)
        let port = try freePort()
        try startGateway(services: "  finfirst: { endpoints: [127.0.0.1:\(finFirst)] }",
                         tcp: "  - { name: finfirst, address: 127.0.0.1:\(port), service: finfirst }")
        let socket = try RawSocket(port: port)
        // The server's FIN arrives as the end of what the client reads...
        XCTAssertEqual(String(decoding: socket.receive { $0.count >= 6 }, as: UTF8.self), "hello\n")
        XCTAssertTrue(socket.peerClosed())
        // ...and the client's side is still open: what it sends now reaches the server.
        socket.send("sent after the server's FIN")
        socket.shutdownWrite()
        XCTAssertTrue(eventually {
            ((try? String(contentsOf: received, encoding: .utf8)) ?? "").contains("sent after the server's FIN")
        })
        XCTAssertTrue(eventually { self.accessLogLine(listener: "finfirst")?["end"] as? String == "completed" }, gateway.stdout)
    }

    // MARK: Backpressure

    func testAClientCannotOutrunAnUpstreamThatDoesNotRead() throws {
        let stalled = try backend("stall")
        let port = try freePort()
        try startGateway(services: "  stalled: { endpoints: [127.0.0.1:\(stalled)] }",
                         tcp: "  - { name: stalled, address: 127.0.0.1:\(port), service: stalled }")
        let before = try XCTUnwrap(gateway.peakResidentKiB)
        // Sends 1 MiB pieces for as long as the sockets take them, up to 256 MiB, and prints
        // how much went; a send blocked for a second ends it.
        let client = """
            import socket
            s = socket.create_connection(("127.0.0.1", \(port)))
            s.settimeout(1)
            piece, sent = b"x" * (1 << 20), 0
            try:
                while sent < (256 << 20):
                    sent += s.send(piece)
            except socket.timeout:
                pass
            print(sent)
            """
        let result = try runBounded("/usr/bin/env", ["python3", "-c", client], timeout: 60)
        let sent = try XCTUnwrap(Int(result.output.trimmingCharacters(in: .whitespacesAndNewlines)), result.output)
        // Only the sockets' buffers (a few MiB each way on loopback) and Portico's one read in
        // flight fill up: Portico stops reading the client while the upstream cannot take more.
        XCTAssertLessThan(sent, 64 << 20, "the client sent \(sent) bytes to an upstream that reads nothing")
        XCTAssertGreaterThan(sent, 0)
        let after = try XCTUnwrap(gateway.peakResidentKiB)
        XCTAssertLessThan(after - before, 64 * 1024, "Portico's memory grew by \(after - before) KiB")
    }

    // MARK: Refusals and limits

    func testARefusedEndpointHandsTheConnectionToTheNextAndIsEjected() throws {
        let dead = try freePort()
        let echo = try backend("echo", name: "live")
        let port = try freePort()
        let onlyDead = try freePort()
        try startGateway(services: """
              mixed:
                endpoints: [127.0.0.1:\(dead), 127.0.0.1:\(echo)]
                outlierDetection: { consecutiveGatewayErrors: 1, baseEjectionTime: 60s }
              gone: { endpoints: [127.0.0.1:\(dead)] }
            """, tcp: """
              - { name: mixed, address: 127.0.0.1:\(port), service: mixed }
              - { name: gone, address: 127.0.0.1:\(onlyDead), service: gone }
            """)
        for _ in 0..<6 {
            let socket = try RawSocket(port: port)
            socket.send("ping")
            socket.shutdownWrite()
            XCTAssertEqual(String(decoding: socket.receive(), as: UTF8.self), "live\nping")
        }
        // One refusal, then the dead endpoint is ejected and not tried again.
        XCTAssertEqual(gateway.metric("portico_tcp_connect_failures_total{listener=\"mixed\",service=\"mixed\"}"), 1)
        XCTAssertEqual(gateway.metric("portico_outlier_ejections_total{service=\"mixed\"}"), 1)

        // With nothing to connect to, the client's connection is closed.
        let socket = try RawSocket(port: onlyDead)
        XCTAssertTrue(socket.peerClosed())
        XCTAssertTrue(eventually { self.accessLogLine(listener: "gone")?["end"] as? String == "connect_failed" }, gateway.stdout)
    }

    func testAConnectThatHangsEndsAtTheServicesConnectTimeout() throws {
        // A listener whose accept queue is full: the kernel drops further SYNs, so a connect
        // neither succeeds nor is refused. Backlog 1 queues two connections; these fill it.
        let (fd, stuck) = try bindLoopback(listen: true)
        defer { close(fd) }
        let fillers = try (0..<2).map { _ in try RawSocket(port: stuck) }
        let port = try freePort()
        try startGateway(services: "  stuck: { endpoints: [127.0.0.1:\(stuck)], connectTimeout: 400ms }",
                         tcp: "  - { name: stuck, address: 127.0.0.1:\(port), service: stuck }")
        let started = Date()
        let socket = try RawSocket(port: port, timeout: 10)
        XCTAssertTrue(socket.peerClosed())
        let elapsed = Date().timeIntervalSince(started)
        XCTAssertGreaterThan(elapsed, 0.35, "it waited for the connect timeout")
        XCTAssertLessThan(elapsed, 3)
        XCTAssertEqual(gateway.metric("portico_tcp_connect_failures_total{listener=\"stuck\",service=\"stuck\"}"), 1)
        XCTAssertTrue(eventually { self.accessLogLine(listener: "stuck")?["end"] as? String == "connect_failed" }, gateway.stdout)
        XCTAssertEqual(fillers.count, 2)
    }

    func testTheConnectionLimitClosesTheConnectionOverIt() throws {
        let echo = try backend()
        let port = try freePort()
        try startGateway(services: "  echo: { endpoints: [127.0.0.1:\(echo)] }",
                         tcp: "  - { name: limited, address: 127.0.0.1:\(port), service: echo, maxConnections: 2 }")
        func roundTrip(_ socket: RawSocket) -> String {
            socket.send("x")
            return String(decoding: socket.receive { $0.count >= 1 }, as: UTF8.self)
        }
        let first = try RawSocket(port: port)
        let second = try RawSocket(port: port)
        XCTAssertEqual(roundTrip(first), "x")
        XCTAssertEqual(roundTrip(second), "x")
        let third = try RawSocket(port: port)
        XCTAssertTrue(third.peerClosed(), "the third connection is closed at once")
        XCTAssertEqual(gateway.metric("portico_tcp_rejected_connections_total{listener=\"limited\"}"), 1)
        XCTAssertEqual(roundTrip(first), "x", "the two within the limit are unaffected")
        // One closes: a new connection is let in again.
        first.shutdownWrite()
        XCTAssertTrue(first.peerClosed())
        XCTAssertTrue(eventually { self.gateway.metric("portico_tcp_active_connections{listener=\"limited\"}") == 1 })
        let fourth = try RawSocket(port: port)
        XCTAssertEqual(roundTrip(fourth), "x")
    }

    func testAnIdleConnectionIsClosedAndABusyOneIsNot() throws {
        let echo = try backend()
        let port = try freePort()
        try startGateway(services: "  echo: { endpoints: [127.0.0.1:\(echo)] }",
                         tcp: "  - { name: idle, address: 127.0.0.1:\(port), service: echo, idleTimeout: 1s }")
        let idle = try RawSocket(port: port, timeout: 10)
        let busy = try RawSocket(port: port, timeout: 10)
        idle.send("a")
        XCTAssertEqual(idle.receive { $0.count >= 1 }, Array("a".utf8))
        let started = Date()
        // Traffic every 300 ms keeps `busy` open past the second that closes `idle`.
        for _ in 0..<8 {
            busy.send("b")
            XCTAssertEqual(busy.receive { $0.count >= 1 }, Array("b".utf8), "the busy connection is still open")
            usleep(300_000)
        }
        XCTAssertTrue(idle.peerClosed())
        XCTAssertGreaterThan(Date().timeIntervalSince(started), 1.0)
        XCTAssertTrue(eventually { self.accessLogLine(listener: "idle")?["end"] as? String == "idle_timeout" }, gateway.stdout)
    }

    // MARK: Shutdown

    func testOnSIGTERMATCPListenerStopsAcceptingAndItsConnectionsGetTheDrainTimeout() throws {
        let echo = try backend()
        let port = try freePort()
        gateway = try PorticoProcess(config: """
            accessLog: { format: json }
            limits: { drainTimeout: 2s }
            services:
              echo: { endpoints: [127.0.0.1:\(echo)] }
            tcp:
              - { name: echo, address: 127.0.0.1:\(port), service: echo }
            """)
        let open = try RawSocket(port: port)
        open.send("before")
        XCTAssertEqual(open.receive { $0.count >= 6 }, Array("before".utf8))
        let started = Date()
        gateway.signal(SIGTERM)
        XCTAssertTrue(eventually(timeout: 5) { (try? RawSocket(port: port, timeout: 1)) == nil }, "no longer accepting")
        open.send("during")
        XCTAssertEqual(open.receive { $0.count >= 6 }, Array("during".utf8), "an open connection keeps working through the drain")
        XCTAssertEqual(gateway.waitForExit(timeout: 15), 0, gateway.stderr)
        XCTAssertGreaterThan(Date().timeIntervalSince(started), 1.5, "the drain waited for the open connection")
        XCTAssertTrue(open.peerClosed())
        XCTAssertTrue(gateway.accessLogLines.contains { $0["end"] as? String == "shutdown" && $0["bytes_in"] as? Int == 12 },
                      gateway.stdout)
    }

    // MARK: Reload

    func testAReloadChangesTheServiceForNewConnectionsAndCanRemoveTheListener() throws {
        let alpha = try backend("echo", name: "alpha")
        let beta = try backend("echo", name: "beta")
        let port = try freePort()
        let services = "  alpha: { endpoints: [127.0.0.1:\(alpha)] }\n  beta: { endpoints: [127.0.0.1:\(beta)] }"
        try startGateway(services: services, tcp: "  - { name: switch, address: 127.0.0.1:\(port), service: alpha }")
        func greeting() throws -> String {
            let socket = try RawSocket(port: port)
            socket.shutdownWrite()
            return String(decoding: socket.receive(), as: UTF8.self)
        }
        XCTAssertEqual(try greeting(), "alpha\n")
        let open = try RawSocket(port: port)
        XCTAssertEqual(open.receive { $0.count >= 6 }, Array("alpha\n".utf8))

        try gateway.writeConfig("accessLog: { format: json }\nservices:\n\(services)\ntcp:\n  - { name: switch, address: 127.0.0.1:\(port), service: beta }")
        XCTAssertEqual(try Curl.run(["-X", "POST", "\(gateway.admin)/reload"]).status, 200)
        XCTAssertEqual(try greeting(), "beta\n")
        // The connection open before the reload stays with its upstream.
        open.send("still alpha")
        XCTAssertEqual(String(decoding: open.receive { $0.count >= 11 }, as: UTF8.self), "still alpha")

        // Removed by a reload: the port stays bound until the next start, and refuses.
        try gateway.writeConfig("services:\n\(services)")
        XCTAssertEqual(try Curl.run(["-X", "POST", "\(gateway.admin)/reload"]).status, 200)
        XCTAssertTrue(try RawSocket(port: port).peerClosed())
    }
}
