import NIOCore
import NIOEmbedded
import NIOHTTP1
import PorticoCore
import PorticoHTTP1
@testable import PorticoProxy
import XCTest

final class ProtocolSnifferTests: XCTestCase {
    private final class Choice { var value: String? }

    private func makeChannel(_ choice: Choice) throws -> EmbeddedChannel {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(ProtocolSniffer.cleartext(
            http1: { _ in choice.value = "http1" },
            http2: { _ in choice.value = "http2" }))
        return channel
    }

    func testPrefaceChoosesHTTP2AndPassesTheBytesOn() throws {
        let choice = Choice()
        let channel = try makeChannel(choice)
        try channel.writeInbound(ByteBuffer(string: "PRI * HTTP/2.0\r\n"))
        XCTAssertNil(choice.value, "half a preface decides nothing")
        try channel.writeInbound(ByteBuffer(string: "\r\nSM\r\n\r\nframes"))
        XCTAssertEqual(choice.value, "http2")
        var forwarded = try XCTUnwrap(channel.readInbound(as: ByteBuffer.self))
        XCTAssertEqual(forwarded.readString(length: forwarded.readableBytes), "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\nframes")
        XCTAssertThrowsError(try channel.pipeline.syncOperations.handler(type: ProtocolSniffer.self), "it steps aside")
    }

    func testAnythingElseIsHTTP1() throws {
        let choice = Choice()
        let channel = try makeChannel(choice)
        try channel.writeInbound(ByteBuffer(string: "GET / HTTP/1.1\r\n"))
        XCTAssertEqual(choice.value, "http1")
        var forwarded = try XCTUnwrap(channel.readInbound(as: ByteBuffer.self))
        XCTAssertEqual(forwarded.readString(length: forwarded.readableBytes), "GET / HTTP/1.1\r\n")
    }

    func testFirstByteDecides() throws {
        let choice = Choice()
        let channel = try makeChannel(choice)
        try channel.writeInbound(ByteBuffer(string: "P"))
        XCTAssertNil(choice.value)
        try channel.writeInbound(ByteBuffer(string: "OST / HTTP/1.1\r\n"))
        XCTAssertEqual(choice.value, "http1")
    }

    func testATLSRecordChoosesTLSAndAnythingElsePlaintext() throws {
        for (first, expected) in [([UInt8(22), 3, 1], "tls"), (Array("GET /".utf8), "plaintext")] {
            let choice = Choice()
            let channel = EmbeddedChannel()
            try channel.pipeline.syncOperations.addHandler(ProtocolSniffer.tlsOrPlaintext(
                tls: { _ in choice.value = "tls" }, plaintext: { _ in choice.value = "plaintext" }))
            try channel.writeInbound(ByteBuffer(bytes: []))
            XCTAssertNil(choice.value, "no byte yet, no decision")
            try channel.writeInbound(ByteBuffer(bytes: first))
            XCTAssertEqual(choice.value, expected)
            let forwarded = try XCTUnwrap(channel.readInbound(as: ByteBuffer.self))
            XCTAssertEqual(Array(forwarded.readableBytesView), first, "the bytes go on untouched")
        }
    }
}

final class GlueHandlerTests: XCTestCase {
    func testBytesFlowBothWaysAndCloseFollows() throws {
        let (left, right) = GlueHandler.matchedPair()
        let a = EmbeddedChannel(handler: left)
        let b = EmbeddedChannel(handler: right)
        try a.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        try b.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 2)).wait()

        try a.writeInbound(ByteBuffer(string: "to b"))
        a.pipeline.fireChannelReadComplete()
        var atB = try XCTUnwrap(b.readOutbound(as: ByteBuffer.self))
        XCTAssertEqual(atB.readString(length: atB.readableBytes), "to b")

        try b.writeInbound(ByteBuffer(string: "to a"))
        b.pipeline.fireChannelReadComplete()
        var atA = try XCTUnwrap(a.readOutbound(as: ByteBuffer.self))
        XCTAssertEqual(atA.readString(length: atA.readableBytes), "to a")

        a.pipeline.fireChannelInactive()
        b.embeddedEventLoop.run()
        XCTAssertFalse(b.isActive, "one side closing closes the other")
    }
}

final class ProxyHeaderTests: XCTestCase {
    func testFraming() throws {
        XCTAssertEqual(try HTTPFieldList([("Content-Length", "5")]).validateRequestFraming(), 5)
        XCTAssertEqual(try HTTPFieldList([("Content-Length", "5, 5")]).validateRequestFraming(), 5)
        XCTAssertNil(try HTTPFieldList([("Transfer-Encoding", "chunked")]).validateRequestFraming())
        XCTAssertNil(try HTTPFieldList([("Transfer-Encoding", "Chunked")]).validateRequestFraming())
        XCTAssertThrowsError(try HTTPFieldList([("Transfer-Encoding", "gzip, chunked")]).validateRequestFraming()) {
            XCTAssertEqual($0 as? FramingError, .unsupportedTransferCoding)
        }
        XCTAssertThrowsError(try HTTPFieldList([("Transfer-Encoding", "identity, chunked")]).validateRequestFraming()) {
            XCTAssertEqual(($0 as? FramingError).map(LocalReply.init)?.status, .notImplemented)
        }
        for malformed in [",chunked", "chunked,", "gzip", "chunked;x=1", "gzip;q=1, chunked", "chunked , , chunked"] {
            XCTAssertThrowsError(try HTTPFieldList([("Transfer-Encoding", malformed)]).validateRequestFraming(), malformed) {
                XCTAssertEqual(($0 as? FramingError).map(LocalReply.init)?.status, .badRequest, malformed)
            }
        }
        XCTAssertThrowsError(try HTTPFieldList([("Transfer-Encoding", "chunked"), ("Transfer-Encoding", "chunked")])
            .validateRequestFraming())
        XCTAssertThrowsError(try HTTPFieldList([("Transfer-Encoding", "chunked")]).validateRequestFraming(version: .http1_0)) {
            XCTAssertEqual($0 as? FramingError, .transferEncodingOnHTTP10)
        }
        XCTAssertThrowsError(try HTTPFieldList([("Content-Length", "5"), ("Content-Length", "6")]).validateRequestFraming())
        XCTAssertThrowsError(try HTTPFieldList([("Content-Length", "5"), ("Transfer-Encoding", "chunked")]).validateRequestFraming())
        XCTAssertThrowsError(try HTTPFieldList([("Transfer-Encoding", "chunked, gzip")]).validateRequestFraming())
        XCTAssertThrowsError(try HTTPFieldList([("Transfer-Encoding", "chunked, chunked")]).validateRequestFraming())
        XCTAssertThrowsError(try HTTPFieldList([("Content-Length", "-1")]).validateRequestFraming())
        XCTAssertThrowsError(try HTTPFieldList([("Content-Length", "1e3")]).validateRequestFraming())
    }

    /// The value is made once per connection and authority; another authority gets its own.
    func testForwardedValueFollowsTheAuthority() {
        let info = DownstreamConnectionInfo(scheme: "https", listenerName: "l", clientAddress: "::1", protocolName: "HTTP/2")
        XCTAssertEqual(info.forwardedValue(authority: "a.example"), "for=\"[::1]\";host=\"a.example\";proto=https")
        XCTAssertEqual(info.forwardedValue(authority: "a.example"), "for=\"[::1]\";host=\"a.example\";proto=https")
        XCTAssertEqual(info.forwardedValue(authority: "b.example:8443"), "for=\"[::1]\";host=\"b.example:8443\";proto=https")
        XCTAssertEqual(info.forwardedValue(authority: "a.example"), "for=\"[::1]\";host=\"a.example\";proto=https")
    }

    func testHopByHopRemoval() {
        var fields = HTTPFieldList([
            ("Connection", "keep-alive, X-Hop"), ("X-Hop", "1"), ("Keep-Alive", "timeout=5"), ("TE", "trailers"),
            ("Transfer-Encoding", "chunked"), ("Upgrade", "websocket"), ("Proxy-Authorization", "x"), ("X-End", "2"),
        ])
        fields.removeHopByHop()
        XCTAssertEqual(fields.pairs.map(\.name), ["X-End"])

        var upgrade = HTTPFieldList([("Connection", "Upgrade"), ("Upgrade", "websocket"), ("Keep-Alive", "1")])
        upgrade.removeHopByHop(keepUpgrade: true)
        XCTAssertEqual(upgrade.firstValue(of: "upgrade"), "websocket")
        XCTAssertEqual(upgrade.firstValue(of: "connection"), "upgrade")
        XCTAssertFalse(upgrade.contains("keep-alive"))
    }

    func testUpgradeDetection() {
        XCTAssertTrue(HTTPFieldList([("Connection", "keep-alive, Upgrade"), ("Upgrade", "websocket")]).isUpgradeRequest)
        XCTAssertFalse(HTTPFieldList([("Upgrade", "websocket")]).isUpgradeRequest)
    }
}

final class AccessLogFormattingTests: XCTestCase {
    func testJSONStringEscaping() {
        var buffer = ByteBuffer()
        buffer.writeJSONString("a\"b\\c\nd\u{01}é")
        XCTAssertEqual(buffer.readString(length: buffer.readableBytes), "\"a\\\"b\\\\c\\nd\\u0001é\"")
    }

    func testJSONStringWithoutEscapesIsCopiedAsItIs() {
        var buffer = ByteBuffer()
        let path = "/api/" + String(repeating: "p", count: 3000) + "/é"
        buffer.writeJSONString(path)
        XCTAssertEqual(buffer.readString(length: buffer.readableBytes), "\"" + path + "\"")
    }

    func testDecimal() {
        for value in [0, 7, 10, 404, 1_795_267_427_516] {
            var buffer = ByteBuffer()
            buffer.writeDecimal(value)
            XCTAssertEqual(buffer.readString(length: buffer.readableBytes), String(value))
        }
    }

    func testRequestIDsAreUUIDShapedAndDistinct() {
        var random = FastRandom(seed: 42)
        let first = random.makeRequestID()
        let second = random.makeRequestID()
        XCTAssertNotEqual(first, second)
        XCTAssertNotNil(UUID(uuidString: first), first)
        XCTAssertEqual(Array(first)[14], "4", "version 4 layout")
    }
}
