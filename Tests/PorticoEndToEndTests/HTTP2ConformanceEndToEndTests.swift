import Foundation
import XCTest

/// HTTP/2 conformance probes written with Python's `h2` package (a real, independent HTTP/2
/// stack) against the gateway's cleartext port: the rules the proxy core must keep whatever
/// carries its HTTP/2 (issue 15 rebuilds it; these guard the rebuild).
final class HTTP2ConformanceEndToEndTests: GatewayTestCase {
    override func setUpWithError() throws {
        try super.setUpWithError()
        gateway = try PorticoProcess(config: """
            services:
              backend: { endpoints: [\(upstream.address)] }
            routes:
              - match: { prefix: / }
                service: backend
            """)
    }

    private func probe(_ name: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let result = try runCommand("/usr/bin/env", ["python3", "-c", Self.probes, name, String(gateway.httpPort),
                                                     String(gateway.tlsPort), gateway.certificateAuthority])
        XCTAssertEqual(result.status, 0, result.output, file: file, line: line)
        XCTAssertTrue(result.output.hasSuffix("ok\n"), result.output, file: file, line: line)
    }

    /// Over TLS, where ALPN chose h2 and nothing sniffs: the bytes must be the preface.
    func testAnInvalidPrefaceIsAnsweredWithGoAwayThenClosed() throws { try probe("invalid_preface") }
    /// On the cleartext port the preface's magic picks HTTP/2; a first frame other than
    /// SETTINGS is still a bad preface (RFC 9113 3.4).
    func testAPrefaceWithoutSettingsIsAnsweredWithGoAwayThenClosed() throws { try probe("settings_not_first") }
    func testAConnectionErrorIsAnsweredWithGoAwayThenClosed() throws { try probe("goaway_then_close") }
    func testARequestBodyLargerThanTheInitialWindowGoesThrough() throws {
        try probe("large_request_body")
        XCTAssertEqual(upstream.count(), 1)
    }
    func testTheResponseRespectsTheClientsFlowControlWindow() throws { try probe("flow_control") }
    func testAResetStreamLeavesTheConnectionServing() throws { try probe("reset_then_serve") }

    /// Each probe is a function; `sys.argv[1]` names it. A failed expectation raises, and the
    /// script prints `ok` only when the probe passed.
    static let probes = #"""
        import socket, ssl, sys, time
        import h2.config, h2.connection, h2.events, h2.errors, h2.settings

        PORT = int(sys.argv[2])
        HEADERS = [(":method", "GET"), (":scheme", "http"), (":authority", "localhost"), (":path", "/echo")]

        def connect(settings=None):
            s = socket.create_connection(("127.0.0.1", PORT), timeout=10)
            c = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
            c.initiate_connection()
            if settings:
                c.update_settings(settings)
            s.sendall(c.data_to_send())
            return s, c

        def pump(s, c, until, timeout=10):
            """Reads and feeds events until `until(events)` says done; returns all events."""
            seen = []
            deadline = time.time() + timeout
            while time.time() < deadline:
                data = s.recv(65536)
                if not data:
                    seen.append("EOF")
                    return seen
                events = c.receive_data(data)
                seen.extend(events)
                s.sendall(c.data_to_send())
                if until(seen):
                    return seen
            raise AssertionError(f"timed out; saw {seen}")

        def raw_frames(data):
            frames, offset = [], 0
            while offset + 9 <= len(data):
                length = int.from_bytes(data[offset:offset + 3], "big")
                frames.append((data[offset + 3], int.from_bytes(data[offset + 5:offset + 9], "big") & 0x7fffffff,
                               data[offset + 9:offset + 9 + length]))
                offset += 9 + length
            return frames

        def read_until_closed(s, timeout=10):
            s.settimeout(timeout)
            data = b""
            while True:
                try:
                    chunk = s.recv(65536)
                except ConnectionResetError:
                    return data, True
                except socket.timeout:
                    return data, False
                if not chunk:
                    return data, True
                data += chunk

        def goaway_code(frames):
            codes = [int.from_bytes(payload[4:8], "big") for kind, _, payload in frames if kind == 7]
            return codes[-1] if codes else None

        def invalid_preface():
            context = ssl.create_default_context(cafile=sys.argv[4])
            context.set_alpn_protocols(["h2"])
            s = context.wrap_socket(socket.create_connection(("127.0.0.1", int(sys.argv[3])), timeout=10),
                                    server_hostname="localhost")
            assert s.selected_alpn_protocol() == "h2"
            s.sendall(b"INVALID CONNECTION PREFACE\r\n\r\n" + bytes(32))
            data, closed = read_until_closed(s)
            assert goaway_code(raw_frames(data)) == h2.errors.ErrorCodes.PROTOCOL_ERROR, raw_frames(data)
            assert closed, "the connection closes after the GOAWAY"

        def settings_not_first():
            s = socket.create_connection(("127.0.0.1", PORT), timeout=10)
            s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x08\x06\x00\x00\x00\x00\x00" + bytes(8))
            data, closed = read_until_closed(s)
            assert goaway_code(raw_frames(data)) == h2.errors.ErrorCodes.PROTOCOL_ERROR, raw_frames(data)
            assert closed, "the connection closes after the GOAWAY"

        def goaway_then_close():
            s, c = connect()
            # DATA on stream 0 is a connection error of type PROTOCOL_ERROR (RFC 9113 6.1).
            s.sendall(b"\x00\x00\x04\x00\x00\x00\x00\x00\x00abcd")
            data, closed = read_until_closed(s)
            assert goaway_code(raw_frames(data)) == h2.errors.ErrorCodes.PROTOCOL_ERROR, raw_frames(data)
            assert closed, "the connection closes after the GOAWAY"

        def large_request_body():
            s, c = connect()
            body = b"x" * (200 * 1024)
            c.send_headers(1, [(":method", "POST"), (":scheme", "http"), (":authority", "localhost"), (":path", "/upload"),
                               ("content-length", str(len(body)))])
            sent = 0
            response = b""
            status = None
            deadline = time.time() + 15
            while time.time() < deadline:
                while sent < len(body) and c.local_flow_control_window(1) > 0:
                    size = min(c.local_flow_control_window(1), c.max_outbound_frame_size, len(body) - sent)
                    c.send_data(1, body[sent:sent + size], end_stream=sent + size == len(body))
                    sent += size
                s.sendall(c.data_to_send())
                data = s.recv(65536)
                assert data, "the connection stayed open"
                for event in c.receive_data(data):
                    if isinstance(event, h2.events.ResponseReceived):
                        status = dict(event.headers)[b":status"]
                    elif isinstance(event, h2.events.DataReceived):
                        response += event.data
                        c.acknowledge_received_data(event.flow_controlled_length, 1)
                    elif isinstance(event, h2.events.StreamEnded):
                        assert status == b"200", status
                        assert b"body=204800" in response, response
                        return
                s.sendall(c.data_to_send())
            raise AssertionError(f"no full response; sent {sent}")

        def flow_control():
            # A small window: the gateway may send only what the client granted, and must go on
            # as the client grants more. h2 raises FlowControlError if a peer overruns a window.
            s, c = connect({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 1000})
            pump(s, c, lambda seen: any(isinstance(e, h2.events.SettingsAcknowledged) for e in seen))
            c.send_headers(1, [(":method", "GET"), (":scheme", "http"), (":authority", "localhost"), (":path", "/bytes/100000")],
                           end_stream=True)
            s.sendall(c.data_to_send())
            received = 0
            deadline = time.time() + 15
            while time.time() < deadline:
                data = s.recv(65536)
                assert data, "the connection stayed open"
                for event in c.receive_data(data):
                    if isinstance(event, h2.events.DataReceived):
                        assert len(event.data) <= 1000, len(event.data)
                        received += len(event.data)
                        c.acknowledge_received_data(event.flow_controlled_length, 1)
                    elif isinstance(event, h2.events.StreamEnded):
                        assert received == 100000, received
                        return
                s.sendall(c.data_to_send())
            raise AssertionError(f"received {received} of 100000")

        def reset_then_serve():
            s, c = connect()
            c.send_headers(1, [(":method", "GET"), (":scheme", "http"), (":authority", "localhost"), (":path", "/slow/3000/x")],
                           end_stream=True)
            s.sendall(c.data_to_send())
            c.reset_stream(1, h2.errors.ErrorCodes.CANCEL)
            c.send_headers(3, HEADERS, end_stream=True)
            s.sendall(c.data_to_send())
            seen = pump(s, c, lambda seen: any(isinstance(e, h2.events.StreamEnded) and e.stream_id == 3 for e in seen))
            statuses = [dict(e.headers)[b":status"] for e in seen if isinstance(e, h2.events.ResponseReceived)]
            assert statuses == [b"200"], seen

        globals()[sys.argv[1]]()
        print("ok")
        """#
}
