import NIOCore
import NIOHTTP1
import PorticoHTTP1
@testable import PorticoProxy
import XCTest

/// The pure pieces behind the request-edge fixes of issue 14: Host grammar, underscores,
/// upgrade allow-lists, chunk sizes, and spotting an HTTP/2 connection error on the wire.
final class EdgeCheckTests: XCTestCase {
    func testHostGrammar() {
        for valid in ["", "example.com", "example.com:8080", "127.0.0.1", "[::1]", "[::1]:8443", "a-b.c_d~e", "xn--bcher-kva.example:"] {
            XCTAssertTrue(HostHeader.isValid(valid), valid)
        }
        for invalid in ["a, b", "a,b", "a/b", "a@b", "a b", "[::1", "[]", "a:b", "a:123456", "a:65536", "a\u{0}b", "a\tb", "[::1]x", "a:80:80"] {
            XCTAssertFalse(HostHeader.isValid(invalid), invalid)
        }
        XCTAssertTrue(HTTPFieldList([("Host", "a.example")]).hasValidHost)
        XCTAssertTrue(HTTPFieldList([("Accept", "*/*")]).hasValidHost, "a missing Host is judged elsewhere")
        XCTAssertFalse(HTTPFieldList([("Host", "a.example"), ("host", "a.example")]).hasValidHost)
        XCTAssertFalse(HTTPFieldList([("Host", "a@b")]).hasValidHost)
    }

    func testUnderscoreNames() {
        var headers = HTTPFieldList([("X_Debug", "1"), ("x-kept", "1"), ("content_length", "0"), ("X_Debug", "2")])
        XCTAssertTrue(headers.hasUnderscoreName)
        headers.removeUnderscoreNames()
        XCTAssertEqual(headers.pairs.map(\.name), ["x-kept"])
        XCTAssertFalse(headers.hasUnderscoreName)
    }

    func testUpgradeAllowList() {
        let websocket = HTTPFieldList([("Upgrade", "WebSocket"), ("Connection", "Upgrade")])
        XCTAssertTrue(websocket.upgradeProtocolsAllowed(["websocket"]))
        XCTAssertFalse(websocket.upgradeProtocolsAllowed([]))
        XCTAssertFalse(HTTPFieldList([("Upgrade", "h2c")]).upgradeProtocolsAllowed(["websocket"]))
        XCTAssertFalse(HTTPFieldList([("Upgrade", "websocket, h2c")]).upgradeProtocolsAllowed(["websocket"]),
                       "every protocol offered must be allowed")
        XCTAssertTrue(HTTPFieldList([("Upgrade", "foo/2")]).upgradeProtocolsAllowed(["websocket", "foo"]))
    }

    // MARK: HTTP2FrameScanner

    private func frame(type: UInt8, streamID: UInt32 = 0, payload: [UInt8]) -> [UInt8] {
        let length = payload.count
        return [UInt8(length >> 16 & 0xFF), UInt8(length >> 8 & 0xFF), UInt8(length & 0xFF), type, 0]
            + withUnsafeBytes(of: streamID.bigEndian, Array.init) + payload
    }

    private func goAway(code: UInt32) -> [UInt8] {
        frame(type: 7, payload: withUnsafeBytes(of: UInt32(5).bigEndian, Array.init) + withUnsafeBytes(of: code.bigEndian, Array.init)
              + Array("debug".utf8))
    }

    private func sawError(_ bytes: [UInt8], pieceSize: Int) -> Bool {
        var scanner = HTTP2FrameScanner()
        var start = 0
        while start < bytes.count {
            let end = min(start + pieceSize, bytes.count)
            scanner.scan(ByteBuffer(bytes: bytes[start..<end]).readableBytesView)
            start = end
        }
        return scanner.sawErrorGoAway
    }

    func testFrameScannerSpotsAnErrorGoAwayWhereverTheWritesAreCut() {
        let settings = frame(type: 4, payload: [0, 3, 0, 0, 0, 100])
        let data = frame(type: 0, streamID: 1, payload: Array(repeating: 7, count: 300))
        let withError = settings + data + goAway(code: 1)
        let graceful = settings + data + goAway(code: 0) + frame(type: 6, payload: Array(repeating: 0, count: 8))
        for pieceSize in [1, 2, 9, 10, 17, 64, 4096] {
            XCTAssertTrue(sawError(withError, pieceSize: pieceSize), "pieces of \(pieceSize)")
            XCTAssertFalse(sawError(graceful, pieceSize: pieceSize), "NO_ERROR is a graceful GOAWAY; pieces of \(pieceSize)")
        }
        // A file region inside a DATA payload is skipped by its length; one anywhere else
        // leaves the scanner unable to follow, and it stays silent rather than guess.
        var scanner = HTTP2FrameScanner()
        scanner.scan(ByteBuffer(bytes: frame(type: 0, streamID: 1, payload: [])[..<9].map { $0 } ).readableBytesView)
        scanner.scan(ByteBuffer(bytes: [0, 0, 100, 0, 0, 0, 0, 0, 1]).readableBytesView)
        scanner.skip(100)
        scanner.scan(ByteBuffer(bytes: goAway(code: 2)).readableBytesView)
        XCTAssertTrue(scanner.sawErrorGoAway)
        var lost = HTTP2FrameScanner()
        lost.skip(10)
        lost.scan(ByteBuffer(bytes: goAway(code: 2)).readableBytesView)
        XCTAssertFalse(lost.sawErrorGoAway)
        // A DATA payload that contains GOAWAY-looking bytes is skipped by its length.
        let disguised = frame(type: 0, streamID: 1, payload: goAway(code: 2))
        XCTAssertFalse(sawError(disguised, pieceSize: 5))
    }
}
