import Foundation
import NIOCore
import NIOPosix
@testable import PorticoFunctions
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// The readiness check against a real HTTP server on 127.0.0.1 (Python's `http.server`): a
/// 2xx is ready, anything else, a server that closes without an answer, or bytes that are not
/// HTTP are not.
final class ReadinessProbeTests: XCTestCase {
    private static let server = """
    import http.server, socket, sys, threading
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        def do_GET(self):
            if self.path == "/garbage":
                self.wfile.write(b"not http at all\\r\\n\\r\\n"); self.wfile.flush(); return
            if self.path == "/silent":
                self.close_connection = True; return
            status = {"/ready": 200, "/no-content": 204, "/starting": 503}.get(self.path, 404)
            if self.path == "/ready":
                self.send_response_only(100); self.end_headers()
            self.send_response(status)
            self.send_header("content-length", "0")
            self.end_headers()
        def log_message(self, *args): pass
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(server.server_address[1], flush=True)
    threading.Thread(target=lambda: (sys.stdin.read(), server.shutdown()), daemon=True).start()
    server.serve_forever()
    """

    private struct ServerExited: Error {}

    private var process: Process!
    private var input: Pipe!
    private var port = 0
    private let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)

    override func setUpWithError() throws {
        process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", Self.server]
        let output = Pipe()
        input = Pipe()
        process.standardOutput = output
        process.standardInput = input
        try process.run()
        // The server prints its port once it listens.
        var line = Data()
        while !line.contains(UInt8(ascii: "\n")) {
            let chunk = output.fileHandleForReading.availableData
            guard !chunk.isEmpty else { throw ServerExited() }
            line.append(chunk)
        }
        port = Int(String(decoding: line, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
        XCTAssertGreaterThan(port, 0)
    }

    override func tearDownWithError() throws {
        try? input.fileHandleForWriting.close()
        process.waitUntilExit()
        try group.syncShutdownGracefully()
    }

    private func check(_ path: String?) throws -> Bool {
        try ReadinessProbe.check(port: port, path: path, on: group.next()).wait()
    }

    func testA2xxIsReadyAfterAnyInterimAnswer() throws {
        XCTAssertTrue(try check("/ready"), "100 Continue, then 200")
        XCTAssertTrue(try check("/no-content"))
    }

    func testOtherStatusesAndBrokenAnswersAreNotReady() throws {
        XCTAssertFalse(try check("/starting"))
        XCTAssertFalse(try check("/missing"))
        XCTAssertFalse(try check("/silent"), "closed without an answer")
        XCTAssertFalse(try check("/garbage"), "not HTTP")
    }

    func testWithoutAPathAnAcceptedConnectionIsReady() throws {
        XCTAssertTrue(try check(nil))
    }

    func testWithoutAPathAListeningPortIsReadyAndABoundOneIsNot() throws {
        XCTAssertEqual(LoopbackPort.accepts(port), true, "the server listens")
        XCTAssertTrue(try check(nil))
        // Bound but not listening: the kernel refuses, which is "not yet".
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        XCTAssertEqual(withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }, 0)
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        let bound = Int(UInt16(bigEndian: address.sin_port))
        XCTAssertEqual(LoopbackPort.accepts(bound), false)
        XCTAssertFalse(try ReadinessProbe.check(port: bound, path: nil, on: group.next()).wait())
        XCTAssertEqual(listen(fd, 1), 0)
        XCTAssertEqual(LoopbackPort.accepts(bound), true, "and once it listens, it is ready")
    }
}
