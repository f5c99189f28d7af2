import Foundation
import XCTest

/// WebSockets over HTTP/2 (RFC 8441, extended CONNECT) from a client written with Python's `h2`,
/// through the real binary, to the HTTP/1.1 WebSocket echo of `TestUpstream`.
final class WebSocketOverHTTP2EndToEndTests: GatewayTestCase {
    /// `python3 -c client PORT PATH MESSAGE...`: opens the stream, sends each message as a masked
    /// text frame and prints each echoed one, then closes the WebSocket and waits for the
    /// stream's end. Prints `settings=`, `status=`, `echo=` lines and `ended=yes`.
    static let client = #"""
        import os, socket, sys
        import h2.config, h2.connection, h2.events, h2.settings
        port, path, messages = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        connection = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
        connection.initiate_connection()
        sock.sendall(connection.data_to_send())
        received = b""
        state = {"status": None, "ended": False, "settings": False}

        def pump():
            global received
            data = sock.recv(65536)
            if not data:
                raise SystemExit("connection closed")
            for event in connection.receive_data(data):
                if isinstance(event, h2.events.RemoteSettingsChanged):
                    setting = event.changed_settings.get(h2.settings.SettingCodes.ENABLE_CONNECT_PROTOCOL)
                    if setting is not None:
                        state["settings"] = setting.new_value == 1
                elif isinstance(event, h2.events.ResponseReceived):
                    headers = dict(event.headers)
                    state["status"] = headers[":status"]
                    print("accept=" + headers.get("sec-websocket-accept", "none"))
                elif isinstance(event, h2.events.DataReceived):
                    received += event.data
                    connection.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                elif isinstance(event, (h2.events.StreamEnded, h2.events.StreamReset)):
                    state["ended"] = True
            sock.sendall(connection.data_to_send())

        def frame(opcode, payload):
            mask = os.urandom(4)
            return bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))

        def next_frame():
            global received
            while len(received) < 2 or len(received) < 2 + (received[1] & 0x7F):
                pump()
            size = received[1] & 0x7F
            opcode, payload = received[0] & 0x0F, received[2:2 + size]
            received = received[2 + size:]
            return opcode, payload

        while not state["settings"]:
            pump()
        print("settings=enable-connect-protocol")
        stream = connection.get_next_available_stream_id()
        connection.send_headers(stream, [(":method", "CONNECT"), (":protocol", "websocket"), (":scheme", "http"),
                                         (":path", path), (":authority", "localhost"), ("sec-websocket-version", "13")])
        sock.sendall(connection.data_to_send())
        while state["status"] is None:
            pump()
        print("status=" + state["status"])
        if state["status"] != "200":
            raise SystemExit(0)
        for message in messages:
            connection.send_data(stream, frame(0x1, message.encode()))
            sock.sendall(connection.data_to_send())
            opcode, payload = next_frame()
            print("echo=" + payload.decode())
        connection.send_data(stream, frame(0x8, b"\x03\xe8"))
        sock.sendall(connection.data_to_send())
        opcode, payload = next_frame()
        print("close=%d" % opcode)
        while not state["ended"]:
            pump()
        print("ended=yes")
        """#

    private func run(_ path: String, _ messages: [String]) throws -> [String: String] {
        let result = try PythonPeer.run(script: Self.client, arguments: [String(gateway.httpPort), path] + messages, timeout: 30)
        var values = GRPCPeers.values(result.output)
        values["output"] = result.output
        return values
    }

    func testAWebSocketOverHTTP2ReachesAnHTTP1Upstream() throws {
        gateway = try PorticoProcess(config: """
            services:
              backend: { endpoints: [\(upstream.address)] }
            routes:
              - match: { prefix: / }
                service: backend
            """)
        let values = try run("/ws", ["hello", "second message"])
        XCTAssertEqual(values["settings"], "enable-connect-protocol", values["output"] ?? "")
        XCTAssertEqual(values["status"], "200", "an extended CONNECT is answered 200, not 101: \(values["output"] ?? "")")
        XCTAssertEqual(values["accept"], "none", "Sec-WebSocket-Accept belongs to HTTP/1.1's handshake")
        XCTAssertEqual(values["echo"], "echo:second message")
        XCTAssertTrue(values["output"]?.contains("echo=echo:hello") ?? false)
        XCTAssertEqual(values["close"], "8", "the close frame comes back")
        XCTAssertEqual(values["ended"], "yes", "the upstream's close ends the stream")
        // The gateway still serves the connection's other streams, and others.
        XCTAssertEqual(try Curl.run(["--http2-prior-knowledge", "\(gateway.http)/plain"]).status, 200)
    }

    func testAnUpstreamThatAnswersWithAPageOpensNoTunnel() throws {
        // An HTTP/2 service never sees the `Upgrade` (HTTP/2 has none) and answers 200 with a
        // page: relayed, the client would take it for an open WebSocket.
        let port = try freePort()
        let server = try PythonPeer(script: MisbehavingHTTP2Server.script, arguments: [String(port)], marker: marker)
        defer { server.stop() }
        gateway = try PorticoProcess(config: """
            services:
              h2: { endpoints: [127.0.0.1:\(port)], protocol: h2c }
            routes:
              - match: { prefix: / }
                service: h2
            """)
        XCTAssertEqual(try run("/chat", [])["status"], "502")
    }

    func testARouteThatTunnelsNoUpgradeRefusesAnExtendedConnect() throws {
        gateway = try PorticoProcess(config: """
            services:
              backend: { endpoints: [\(upstream.address)] }
            routes:
              - match: { prefix: / }
                service: backend
                upgrades: []
            """)
        // Served as a plain GET, the upstream's 200 would read as a WebSocket opened.
        let values = try run("/ws", [])
        XCTAssertEqual(values["status"], "403", values["output"] ?? "")
    }
}
