import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// Long-lived requests to functions: a WebSocket and a server-sent event stream, held open
/// across a scale-down and a redeploy (what Knative's activator breaks).
final class FunctionStreamsEndToEndTests: XCTestCase {
    var gateway: PorticoProcess!
    let marker = "portico-test-\(UUID().uuidString.prefix(8))"

    override func tearDown() {
        if let gateway {
            gateway.stop()
            XCTAssertTrue(eventually { Processes.matching(self.marker).isEmpty },
                          "workers left behind: \(Processes.matching(marker).map(\.commandLine))")
        }
    }

    /// A WebSocket echo server (RFC 6455, text frames only) that names its process and revision
    /// in each echo; a plain GET gets the same names. `/events` streams 300 server-sent events,
    /// one every 100 ms.
    static let worker = #"""
        import base64, hashlib, os, socket, sys, threading, time
        NAME = f"pid={os.getpid()} revision={os.environ['K_REVISION']}"

        def frames(conn):
            buffer = b""
            while True:
                while len(buffer) < 2 or len(buffer) < 6 + (buffer[1] & 0x7F):
                    data = conn.recv(65536)
                    if not data:
                        return
                    buffer += data
                length = buffer[1] & 0x7F
                mask, payload = buffer[2:6], buffer[6:6 + length]
                buffer = buffer[6 + length:]
                yield bytes(b ^ mask[i % 4] for i, b in enumerate(payload))

        def serve(conn):
            request = b""
            while b"\r\n\r\n" not in request:
                data = conn.recv(65536)
                if not data:
                    return
                request += data
            head = request.split(b"\r\n\r\n")[0].decode()
            path = head.split(" ")[1]
            headers = {l.split(":", 1)[0].strip().lower(): l.split(":", 1)[1].strip() for l in head.split("\r\n")[1:] if ":" in l}
            if "sec-websocket-key" in headers:
                accept = base64.b64encode(hashlib.sha1((headers["sec-websocket-key"] + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()).decode()
                conn.sendall(f"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n".encode())
                for text in frames(conn):
                    reply = f"echo:{text.decode()} {NAME}".encode()
                    conn.sendall(bytes([0x81, len(reply)]) + reply)
                return
            if path == "/events":
                conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n")
                for i in range(300):
                    conn.sendall(f"data: {i} {NAME}\n\n".encode())
                    time.sleep(0.1)
                return
            body = f"{NAME}\n".encode()
            conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body))

        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", int(os.environ["PORT"])))
        listener.listen(64)
        while True:
            conn, _ = listener.accept()
            threading.Thread(target=lambda c=conn: (serve(c), c.close()), daemon=True).start()
        """#

    func writeFunction(_ root: URL, manifest: String, version: Int = 1) throws {
        let folder = root.appendingPathComponent("Functions/streams")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        try Self.worker.write(to: folder.appendingPathComponent("worker.py"), atomically: true, encoding: .utf8)
        try ("command: [\"python3\", \"worker.py\", \"\(marker)\"]\nenv: { VERSION: \"\(version)\" }\nmaxWorkers: 1\n" + manifest)
            .write(to: folder.appendingPathComponent("function.yaml"), atomically: true, encoding: .utf8)
    }

    /// Opens a WebSocket to the function and returns the socket after the 101.
    func openWebSocket() throws -> RawSocket {
        let socket = try RawSocket(port: gateway.httpPort)
        socket.send("GET /function/streams/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                    + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
        let handshake = String(decoding: socket.receive { String(decoding: $0, as: UTF8.self).contains("\r\n\r\n") }, as: UTF8.self)
        XCTAssertTrue(handshake.hasPrefix("HTTP/1.1 101"), "\(handshake)\n\(gateway.stderr)")
        return socket
    }

    func echo(_ socket: RawSocket, _ text: String) -> String? {
        socket.send(WebSocketFrames.maskedText(text))
        return WebSocketFrames.unmaskedText(socket.receive { WebSocketFrames.unmaskedText($0) != nil })
    }

    func revision() -> String? {
        gateway.functionEntry("streams")?["revision"] as? String
    }

    func redeploy(version: Int, manifest: String) throws -> String {
        let old = revision()
        try writeFunction(gateway.directory, manifest: manifest, version: version)
        var new: String?
        XCTAssertTrue(eventually { new = self.revision(); return new != nil && new != old }, "redeployed: \(gateway.stderr)")
        return new ?? ""
    }

    func testAnOpenWebSocketKeepsItsWorkerThroughIdleTimeoutsAndARedeploy() throws {
        let manifest = "idleTimeout: 300ms\n"
        gateway = try PorticoProcess(config: "routes: []") { root in try self.writeFunction(root, manifest: manifest) }
        let socket = try openWebSocket()
        let first = try XCTUnwrap(echo(socket, "a"))
        XCTAssertTrue(first.hasPrefix("echo:a pid="), first)
        let oldRevision = try XCTUnwrap(revision())
        XCTAssertEqual(gateway.functionLoad("streams")?.inFlight, 1, "the open stream is a request in flight")

        // Many idle timeouts pass: the worker is busy, not idle, for as long as the stream is open.
        let watchUntil = Date().addingTimeInterval(2)
        while Date() < watchUntil {
            XCTAssertFalse(gateway.stderr.contains("worker stopped"), "a worker with an open stream was stopped")
            usleep(100_000)
        }
        XCTAssertEqual(echo(socket, "b"), first.replacingOccurrences(of: "echo:a", with: "echo:b"))

        // A redeploy: new requests reach the new revision; the stream stays on its old worker.
        let newRevision = try redeploy(version: 2, manifest: manifest)
        var plain = ""
        XCTAssertTrue(eventually {
            plain = (try? Curl.run(["\(self.gateway.http)/function/streams/"]).body) ?? ""
            return plain.contains("revision=\(newRevision)")
        }, plain)
        XCTAssertEqual(echo(socket, "c"), first.replacingOccurrences(of: "echo:a", with: "echo:c"),
                       "the old revision's worker still serves the open stream")
        XCTAssertTrue(first.contains("revision=\(oldRevision)"))
        let oldPID = try XCTUnwrap(first.split(separator: " ").first { $0.hasPrefix("pid=") }.flatMap { Int32($0.dropFirst(4)) })
        XCTAssertEqual(kill(oldPID, 0), 0, "the old worker runs while its stream is open")

        // The stream ends: the drain finishes and the old worker stops.
        socket.shutdownWrite()
        XCTAssertTrue(eventually { kill(oldPID, 0) != 0 }, "the old worker stops once its stream closed")
    }

    func testMaxStreamDurationEndsAStreamThatOutlivesTheDrain() throws {
        let manifest = "maxStreamDuration: 1s\n"
        gateway = try PorticoProcess(config: "routes: []") { root in try self.writeFunction(root, manifest: manifest) }
        let socket = try openWebSocket()
        let first = try XCTUnwrap(echo(socket, "a"))
        let oldPID = try XCTUnwrap(first.split(separator: " ").first { $0.hasPrefix("pid=") }.flatMap { Int32($0.dropFirst(4)) })
        _ = try redeploy(version: 2, manifest: manifest)
        XCTAssertTrue(eventually(timeout: 15) { kill(oldPID, 0) != 0 }, "stopped once maxStreamDuration passed")
        XCTAssertTrue(socket.peerClosed(), "and its stream ended with it")
        XCTAssertTrue(gateway.stderr.contains("(maxStreamDuration)"), "the log says why")
    }

    func testAnEventStreamOf30SecondsSurvivesARedeployWithoutLoss() throws {
        let manifest = "idleTimeout: 1s\n"
        gateway = try PorticoProcess(config: "routes: []") { root in try self.writeFunction(root, manifest: manifest) }
        let curl = Process()
        curl.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
        curl.arguments = ["-sN", "--max-time", "90", "\(gateway.http)/function/streams/events"]
        let output = Pipe()
        curl.standardOutput = output
        try curl.run()
        // Read as it comes, so the pipe never fills.
        let received = LockedData()
        let reader = Thread {
            while case let chunk = output.fileHandleForReading.availableData, !chunk.isEmpty { received.append(chunk) }
        }
        reader.start()
        XCTAssertTrue(eventually { received.text.contains("data: 10 ") }, "the stream started")
        let oldRevision = try XCTUnwrap(revision())
        let newRevision = try redeploy(version: 2, manifest: manifest)
        XCTAssertTrue(eventually { (try? Curl.run(["\(self.gateway.http)/function/streams/"]).body.contains(newRevision)) ?? false })
        curl.waitUntilExit()
        XCTAssertTrue(eventually { received.text.contains("data: 299 ") })
        let events = received.text.components(separatedBy: "\n\n").filter { !$0.isEmpty }
        XCTAssertEqual(events.count, 300, "every event arrived")
        for (index, event) in events.enumerated() {
            XCTAssertTrue(event.hasPrefix("data: \(index) pid="), "in order: \(event)")
            XCTAssertTrue(event.hasSuffix("revision=\(oldRevision)"), "from the worker it started on: \(event)")
        }
        XCTAssertEqual(curl.terminationStatus, 0)
    }
}

/// Bytes appended by one thread and read by another.
final class LockedData: @unchecked Sendable {  // `lock` guards `data`.
    private let lock = NSLock()
    private var data = Data()

    func append(_ chunk: Data) {
        lock.lock()
        data.append(chunk)
        lock.unlock()
    }

    var text: String {
        lock.lock()
        defer { lock.unlock() }
        return String(decoding: data, as: UTF8.self)
    }
}
