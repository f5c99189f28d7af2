import NIOCore
import NIOEmbedded
import PorticoConfig
@testable import PorticoProxy
import XCTest

/// A passthrough connection before it has an upstream, on an `EmbeddedChannel`: what it does
/// with the bytes of a ClientHello that arrives in pieces, is not TLS, names no route, or never
/// ends. (Connecting needs real sockets: the end-to-end tests do that part.)
final class TCPProxySessionTests: XCTestCase {
    private let service = ServiceConfig(name: "alpha", endpoints: [HostPort(host: "127.0.0.1", port: 1)])

    private func connection(helloTimeout: ConfigDuration = .seconds(10)) throws -> EmbeddedChannel {
        let listener = TCPListenerConfig(
            name: "pass", address: HostPort(host: "127.0.0.1", port: 0),
            routing: .serverName(routes: [ServerNameRoute(names: ["alpha.example"], service: "alpha")], defaultService: nil),
            helloTimeout: helloTimeout)
        let snapshot = try RuntimeSnapshot(config: GatewayConfig(
            sourceFile: "test.yaml", listeners: [], admin: nil, services: [service], routes: [], tcp: [listener]),
            generation: 1)
        let channel = EmbeddedChannel()
        let metrics = GatewayMetrics()
        let loop = LoopContext(eventLoop: channel.embeddedEventLoop, loopIndex: 0, snapshot: snapshot, metrics: metrics,
                               accessLogWriter: nil)
        let session = TCPProxySession(listener: TCPListenerState(name: "pass", metrics: metrics),
                                      routes: try XCTUnwrap(snapshot.tcpRoutes["pass"]), loop: loop)
        try channel.pipeline.syncOperations.addHandler(TCPRelayHandler(side: .client, session: session))
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 40000)).wait()
        return channel
    }

    /// A ClientHello for `name` with nothing but the server_name extension.
    private func hello(_ name: String) -> [UInt8] {
        let nameBytes = Array(name.utf8)
        let entry: [UInt8] = [0, UInt8(nameBytes.count >> 8), UInt8(nameBytes.count & 0xFF)] + nameBytes
        let list: [UInt8] = [UInt8(entry.count >> 8), UInt8(entry.count & 0xFF)] + entry
        let sni: [UInt8] = [0, 0, UInt8(list.count >> 8), UInt8(list.count & 0xFF)] + list
        var body: [UInt8] = [3, 3] + Array(repeating: 1, count: 32) + [0] + [0, 2, 0x13, 0x01] + [1, 0]
        body += [UInt8(sni.count >> 8), UInt8(sni.count & 0xFF)] + sni
        let handshake: [UInt8] = [1, 0, UInt8(body.count >> 8), UInt8(body.count & 0xFF)] + body
        return [22, 3, 1, UInt8(handshake.count >> 8), UInt8(handshake.count & 0xFF)] + handshake
    }

    private func send(_ bytes: [UInt8], to channel: EmbeddedChannel) throws {
        try channel.writeInbound(channel.allocator.buffer(bytes: bytes))
        channel.pipeline.fireChannelReadComplete()
        channel.embeddedEventLoop.run()
    }

    func testAHelloInPiecesIsWaitedForAndAnUnknownNameIsClosedWithoutAByte() throws {
        let channel = try connection()
        let bytes = hello("other.example")
        for byte in bytes.dropLast() {
            try send([byte], to: channel)
            XCTAssertTrue(channel.isActive, "still reading the hello")
        }
        try send([bytes.last!], to: channel)
        XCTAssertFalse(channel.isActive)
        XCTAssertNil(try channel.readOutbound(as: ByteBuffer.self).flatMap { $0.readableBytes > 0 ? $0 : nil })
    }

    func testNonTLSIsClosedAtOnce() throws {
        let channel = try connection()
        try send(Array("GET / HTTP/1.1\r\n".utf8), to: channel)
        XCTAssertFalse(channel.isActive)
    }

    func testAHelloThatNeverEndsIsClosedAtTheHelloTimeout() throws {
        let channel = try connection(helloTimeout: .seconds(2))
        try send(Array(hello("alpha.example").prefix(20)), to: channel)
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(1999))
        XCTAssertTrue(channel.isActive)
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(1))
        XCTAssertFalse(channel.isActive)
    }

    func testWhatIsBufferedIsBounded() throws {
        let channel = try connection()
        // A record that says it carries 16 KiB, then its bytes: over the limit once the header is in.
        try send([22, 3, 1, 0x40, 0x00], to: channel)
        XCTAssertFalse(channel.isActive)
    }
}
