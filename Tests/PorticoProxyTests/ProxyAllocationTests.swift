#if os(Linux)
import CAllocationCounter
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
@testable import PorticoProxy
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// Counts the heap allocations the gateway's event loop makes per proxied request, in the
/// spirit of swift-nio's `IntegrationTests/tests_04_performance`: a change that adds
/// allocations to the hot path fails here instead of only showing in a benchmark.
///
/// Real sockets on 127.0.0.1: a blocking client on the test's thread, a NIO backend on a loop
/// of its own, and the gateway with one event loop, the only thread that is counted.
final class ProxyAllocationTests: XCTestCase {
    /// Allocations per request through an HTTP/1.1 keep-alive connection to a service, plus a
    /// few for the bookkeeping that does not happen on every request. The count is exact from
    /// run to run. Lower the limit when you remove allocations; raise it only with a reason in
    /// the commit message.
    ///
    /// Two builds, two limits. `swift test` makes a debug build, where generic code that is not
    /// specialised allocates on its own: that count moves with any change to the hot path, which
    /// is what this test guards. The targets (10 per HTTP/1.1 request, 15 per h2c
    /// stream) are for a release build, which `Benchmarks/run` counts with this test:
    /// `swift build -c release -Xswiftc -enable-testing --build-tests` (`@testable import`
    /// needs the flag), then `.build/release/PorticoPackageTests.xctest
    /// PorticoProxyTests.ProxyAllocationTests`.
    ///
    /// Debug: 101 when this was set, 78 since requests and responses travel as parsed heads
    /// with field lists instead of NIO's `HTTPRequestHead`/`HTTPResponseHead`, 66 since the
    /// HTTP/1 handlers hand parts to each other by direct calls instead of boxing each one in
    /// `NIOAny`, 65 with the connection's `Forwarded` value made once, 64 since the request's
    /// fields become the upstream head's instead of being copied. Release: 20, then 8, 7, and 6.
    #if DEBUG
    static let http1RequestLimit = 65.0
    #else
    static let http1RequestLimit = 6.0
    #endif

    /// Allocations per proxied request on an h2c stream, counted the same way: each request a
    /// new stream on one connection. Debug: 160 with the streams a table of
    /// `HTTP2ServerConnection` rather than child channels, 129 once heads became field lists,
    /// 119 with the upstream codec's direct calls and the last DATA frame carrying END_STREAM,
    /// 111 without an idle timer scheduled per stream, 109 with the connection's `Forwarded`
    /// value made once and one deferred-flush closure per connection, 106 since the request's
    /// fields are handed on (`consume`) and become the upstream head's instead of being copied.
    /// Release: 32, then 24, 19, 17, and 14.
    #if DEBUG
    static let h2cStreamLimit = 107.0
    #else
    static let h2cStreamLimit = 14.0
    #endif

    /// Allocations per HTTP/1.1 request to an h2c service: the request a stream on a shared
    /// upstream connection (`HTTP2UpstreamStream`). More than to an HTTP/1.1 service: the head
    /// crosses into and out of `HPACKHeaders` (a `String` per field NIO's HPACK coder needs),
    /// and each frame is boxed on its way through `NIOHTTP2Handler`, as on the client side.
    /// Debug: 179 when this was set (178.4 measured; the fraction comes and goes with NIO's
    /// per-connection stream bookkeeping). Release: 19 (the benchmark's count, `70fe055`).
    #if DEBUG
    static let h2cUpstreamRequestLimit = 179.0
    #else
    static let h2cUpstreamRequestLimit = 19.0
    #endif

    func testHTTP1RequestToAnH2CServiceAllocations() throws {
        let backend = try LoopbackH2CServer(body: "hello\n")
        defer { backend.stop() }
        try measureAllocations(limit: Self.h2cUpstreamRequestLimit, label: "HTTP/1.1 request to an h2c service",
                               upstream: (backend.port, "h2c")) { port in
            let client = try BlockingHTTPClient(port: port)
            return (client.get, client.close)
        }
    }

    func testHTTP1ProxiedRequestAllocations() throws {
        try measureAllocations(limit: Self.http1RequestLimit, label: "HTTP/1.1 request") { port in
            let client = try BlockingHTTPClient(port: port)
            return (client.get, client.close)
        }
    }

    func testH2CProxiedStreamAllocations() throws {
        try measureAllocations(limit: Self.h2cStreamLimit, label: "h2c stream") { port in
            let client = try BlockingH2CClient(port: port)
            return (client.get, client.close)
        }
    }

    /// With `tracing:` on, what a request costs more when its trace is not sampled (it still
    /// reads `traceparent`, gets ids, and sends one upstream) and when it is (its spans are
    /// encoded into the loop's batch; the exporter, on its own thread, is not counted).
    /// Debug: 0 and 6 more than the same request without tracing when this was set (64.0 and
    /// 70.05 measured). The release counts are the benchmark's to take; until it has, the
    /// debug figures bound them (a release build allocates less than a debug one, never more).
    static let tracingUnsampledExtra = 0.0
    static let tracingSampledExtra = 6.0

    func testHTTP1RequestWithAnUnsampledTraceAllocations() throws {
        try measureAllocations(limit: Self.http1RequestLimit + Self.tracingUnsampledExtra, label: "HTTP/1.1 request, trace not sampled",
                               extraConfig: "tracing: { endpoint: \"http://127.0.0.1:9/v1/traces\", sampling: { ratio: 0 } }") { port in
            let client = try BlockingHTTPClient(port: port)
            return (client.get, client.close)
        }
    }

    func testHTTP1RequestWithASampledTraceAllocations() throws {
        try measureAllocations(limit: Self.http1RequestLimit + Self.tracingSampledExtra, label: "HTTP/1.1 request, trace sampled",
                               extraConfig: "tracing: { endpoint: \"http://127.0.0.1:9/v1/traces\", sampling: { ratio: 1 } }") { port in
            let client = try BlockingHTTPClient(port: port)
            return (client.get, client.close)
        }
    }

    private func measureAllocations(
        limit: Double, label: String, upstream: (port: Int, protocol: String)? = nil, extraConfig: String = "",
        client makeClient: (Int) throws -> (get: (String) throws -> String, close: () -> Void)
    ) throws {
        let backend = try LoopbackHTTPServer { _ in "hello\n" }
        defer { backend.stop() }
        let service = upstream.map { "127.0.0.1:\($0.port)], protocol: \($0.protocol)" } ?? "127.0.0.1:\(backend.port)]"
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("portico-alloc-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let configPath = folder.appendingPathComponent("gateway.yaml").path
        try """
        listeners:
          - name: public
            address: 127.0.0.1:0
        accessLog: { format: off }
        \(extraConfig)
        services:
          backend: { endpoints: [\(service) }
        routes:
          - match: { prefix: / }
            service: backend
        """.write(toFile: configPath, atomically: true, encoding: .utf8)

        let gateway = try Gateway(configPath: configPath, eventLoopThreads: 1,
                                  logger: Logger(label: "alloc-test", factory: { _ in SwiftLogNoOpLogHandler() }))
        let running = RunningGateway(gateway, logger: Logger(label: "alloc-test", factory: { _ in SwiftLogNoOpLogHandler() }))
        defer { running.stop() }
        try running.waitUntilReady()
        let port = try XCTUnwrap(gateway.boundAddress(listener: "public")?.port)
        let loop = try XCTUnwrap(gateway.proxyEventLoops.first)
        try loop.submit { portico_count_allocations_on_this_thread(1) }.wait()

        let client = try makeClient(port)
        defer { client.close() }
        // Warm-up: the upstream connection, the metric series and NIO's buffers settle here.
        for _ in 0..<300 { XCTAssertEqual(try client.get("/warm"), "hello\n") }

        let requests = 2000
        let before = portico_counted_allocations()
        for _ in 0..<requests {
            guard try client.get("/measured") == "hello\n" else { return XCTFail("unexpected body") }
        }
        let perRequest = Double(portico_counted_allocations() - before) / Double(requests)
        print("allocations per proxied \(label): \(perRequest)")
        // A sanitizer build brings its own allocator, and the counter steps aside.
        try XCTSkipIf(perRequest == 0 && isSanitized, "allocations are not counted under a sanitizer")
        XCTAssertGreaterThan(perRequest, 1, "the counter counted nothing: is it still interposing malloc?")
        XCTAssertLessThanOrEqual(perRequest, limit, "the proxy's hot path allocates more per \(label) than it used to")
    }

    private var isSanitized: Bool {
        ProcessInfo.processInfo.environment.keys.contains { $0.hasPrefix("ASAN_") || $0.hasPrefix("TSAN_") }
            || (dlsym(nil, "__asan_init") != nil || dlsym(nil, "__tsan_init") != nil)
    }

}

/// A keep-alive HTTP/1.1 client on a plain blocking socket: it allocates nothing on the
/// gateway's thread and little on its own.
private final class BlockingHTTPClient {
    private let socket: Int32
    private var buffer = [UInt8](repeating: 0, count: 65536)

    init(port: Int) throws {
        socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard socket >= 0 else { throw POSIXError(.EMFILE) }
        // A gateway that stops answering fails the test instead of hanging it.
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(socket, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(socket, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard connected == 0 else {
            Glibc.close(socket)
            throw POSIXError(.ECONNREFUSED)
        }
    }

    /// Sends a GET and returns the response body (the response must have a content-length).
    func get(_ path: String) throws -> String {
        let request = Array("GET \(path) HTTP/1.1\r\nHost: localhost\r\n\r\n".utf8)
        let sent = request.withUnsafeBytes { Glibc.send(socket, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        guard sent == request.count else { throw POSIXError(.EIO) }
        var received: [UInt8] = []
        while true {
            let count = buffer.withUnsafeMutableBytes { Glibc.recv(socket, $0.baseAddress, $0.count, 0) }
            guard count > 0 else { throw POSIXError(.ECONNRESET) }
            received.append(contentsOf: buffer[0..<count])
            guard let headerEnd = received.firstRange(of: Array("\r\n\r\n".utf8)) else { continue }
            let head = String(decoding: received[..<headerEnd.lowerBound], as: UTF8.self).lowercased()
            guard head.hasPrefix("http/1.1 200"),
                  let lengthLine = head.split(separator: "\r\n").first(where: { $0.hasPrefix("content-length:") }),
                  let length = Int(lengthLine.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces))
            else { throw POSIXError(.EBADMSG) }
            if received.count - headerEnd.upperBound >= length {
                return String(decoding: received[headerEnd.upperBound..<(headerEnd.upperBound + length)], as: UTF8.self)
            }
        }
    }

    func sendBytes(_ bytes: [UInt8]) throws {
        let sent = bytes.withUnsafeBytes { Glibc.send(socket, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        guard sent == bytes.count else { throw POSIXError(.EIO) }
    }

    func receiveSome() throws -> [UInt8] {
        let count = buffer.withUnsafeMutableBytes { Glibc.recv(socket, $0.baseAddress, $0.count, 0) }
        guard count > 0 else { throw POSIXError(.ECONNRESET) }
        return Array(buffer[0..<count])
    }

    func close() { Glibc.close(socket) }
}

/// An h2c client with prior knowledge on a plain blocking socket, one stream per request, one
/// at a time. Its header block is encoded once by hand (HPACK literals that leave the server's
/// table alone), and it reads only what it needs of the answer: the body, and the end of the
/// stream. Everything it allocates is on its own thread.
private final class BlockingH2CClient {
    private let socket: BlockingHTTPClient
    private var nextStream: UInt32 = 1
    private var pending: [UInt8] = []

    init(port: Int) throws {
        socket = try BlockingHTTPClient(port: port)
        // The preface, and empty SETTINGS.
        try socket.sendBytes(Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8) + Self.frame(type: 4, flags: 0, stream: 0, payload: []))
    }

    private static func frame(type: UInt8, flags: UInt8, stream: UInt32, payload: [UInt8]) -> [UInt8] {
        let length = payload.count
        return [UInt8(length >> 16 & 0xFF), UInt8(length >> 8 & 0xFF), UInt8(length & 0xFF), type, flags,
                UInt8(stream >> 24 & 0x7F), UInt8(stream >> 16 & 0xFF), UInt8(stream >> 8 & 0xFF), UInt8(stream & 0xFF)]
            + payload
    }

    /// `:method: GET` (static index 2), `:scheme: http` (6), then `:path` and `:authority` as
    /// literals without indexing with indexed names (4 and 1).
    private static func headerBlock(path: String) -> [UInt8] {
        let authority = Array("localhost".utf8)
        let pathBytes = Array(path.utf8)
        return [0x82, 0x86, 0x04, UInt8(pathBytes.count)] + pathBytes + [0x01, UInt8(authority.count)] + authority
    }

    func get(_ path: String) throws -> String {
        let stream = nextStream
        nextStream += 2
        // END_STREAM | END_HEADERS
        try socket.sendBytes(Self.frame(type: 1, flags: 0x5, stream: stream, payload: Self.headerBlock(path: path)))
        var body: [UInt8] = []
        while true {
            while pending.count < 9 { pending += try socket.receiveSome() }
            let length = Int(pending[0]) << 16 | Int(pending[1]) << 8 | Int(pending[2])
            while pending.count < 9 + length { pending += try socket.receiveSome() }
            let type = pending[3]
            let flags = pending[4]
            let frameStream = UInt32(pending[5] & 0x7F) << 24 | UInt32(pending[6]) << 16 | UInt32(pending[7]) << 8 | UInt32(pending[8])
            let payload = Array(pending[9..<(9 + length)])
            pending.removeFirst(9 + length)
            switch type {
            case 4 where flags & 0x1 == 0:
                try socket.sendBytes(Self.frame(type: 4, flags: 0x1, stream: 0, payload: []))  // SETTINGS ACK
            case 3 where frameStream == stream, 7:
                throw POSIXError(.ECONNRESET)  // RST_STREAM, GOAWAY
            case 0 where frameStream == stream:
                body += payload
                if flags & 0x1 != 0 { return String(decoding: body, as: UTF8.self) }
            case 1 where frameStream == stream:
                if flags & 0x1 != 0 { return String(decoding: body, as: UTF8.self) }
            default:
                break
            }
        }
    }

    func close() { socket.close() }
}
#endif
