import NIOCore
import NIOHTTP1
@testable import PorticoProxy
import XCTest

/// The pure pieces behind the request-edge fixes of issue 14: Host grammar, underscores,
/// upgrade allow-lists, chunk sizes, and spotting an HTTP/2 connection error on the wire.
final class EdgeCheckTests: XCTestCase {
    func testHostGrammar() {
        for valid in ["", "example.com", "example.com:8080", "127.0.0.1", "[::1]", "[::1]:8443", "a-b.c_d~e", "xn--bcher-kva.example:"] {
            XCTAssertTrue(HostHeader.isValid(valid.utf8), valid)
        }
        for invalid in ["a, b", "a,b", "a/b", "a@b", "a b", "[::1", "[]", "a:b", "a:123456", "a\u{0}b", "a\tb", "[::1]x", "a:80:80"] {
            XCTAssertFalse(HostHeader.isValid(invalid.utf8), invalid)
        }
        XCTAssertTrue(HTTPHeaders([("Host", "a.example")]).hasValidHost)
        XCTAssertTrue(HTTPHeaders([("Accept", "*/*")]).hasValidHost, "a missing Host is judged elsewhere")
        XCTAssertFalse(HTTPHeaders([("Host", "a.example"), ("host", "a.example")]).hasValidHost)
        XCTAssertFalse(HTTPHeaders([("Host", "a@b")]).hasValidHost)
    }

    func testUnderscoreNames() {
        var headers = HTTPHeaders([("X_Debug", "1"), ("x-kept", "1"), ("content_length", "0"), ("X_Debug", "2")])
        XCTAssertTrue(headers.hasUnderscoreName)
        headers.removeUnderscoreNames()
        XCTAssertEqual(headers.map(\.name), ["x-kept"])
        XCTAssertFalse(headers.hasUnderscoreName)
    }

    func testUpgradeAllowList() {
        let websocket = HTTPHeaders([("Upgrade", "WebSocket"), ("Connection", "Upgrade")])
        XCTAssertTrue(websocket.upgradeProtocolsAllowed(["websocket"]))
        XCTAssertFalse(websocket.upgradeProtocolsAllowed([]))
        XCTAssertFalse(HTTPHeaders([("Upgrade", "h2c")]).upgradeProtocolsAllowed(["websocket"]))
        XCTAssertFalse(HTTPHeaders([("Upgrade", "websocket, h2c")]).upgradeProtocolsAllowed(["websocket"]),
                       "every protocol offered must be allowed")
        XCTAssertTrue(HTTPHeaders([("Upgrade", "foo/2")]).upgradeProtocolsAllowed(["websocket", "foo"]))
    }

    // MARK: ChunkSizeScanner

    private func scan(_ pieces: [String]) -> ChunkSizeScanner.Verdict {
        var scanner = ChunkSizeScanner()
        for piece in pieces {
            let verdict = Array(piece.utf8).withUnsafeBytes { scanner.scan($0) }
            if verdict == .overflow { return .overflow }
        }
        return .fine
    }

    /// Every way of cutting `text` in two gives `expected`.
    private func assertEverySplit(_ text: String, _ expected: ChunkSizeScanner.Verdict, file: StaticString = #filePath, line: UInt = #line) {
        let bytes = Array(text.utf8)
        for cut in 0...bytes.count {
            let pieces = [String(decoding: bytes[..<cut], as: UTF8.self), String(decoding: bytes[cut...], as: UTF8.self)]
            XCTAssertEqual(scan(pieces), expected, "cut at \(cut)", file: file, line: line)
        }
    }

    func testChunkSizesWithinSixtyThreeBitsAreFine() {
        assertEverySplit("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n0\r\n\r\n", .fine)
        assertEverySplit("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n7fffffffffffffff\r\n", .fine)
        assertEverySplit("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n00000000000000000001\r\nx\r\n0\r\n\r\n", .fine)
    }

    func testChunkSizesOfSixtyThreeBitsOrMoreOverflow() {
        assertEverySplit("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n8000000000000000\r\n", .overflow)
        assertEverySplit("POST / HTTP/1.1\r\nTransfer-Encoding: gzip, Chunked\r\n\r\nFFFFFFFFFFFFFFFFF\r\n", .overflow)
        // In a later chunk, and in a later pipelined request.
        assertEverySplit("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n10000000000000000\r\n", .overflow)
        assertEverySplit("POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\n8000000000000000"
                         + "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nTrailer: 1\r\n\r\n"
                         + "GET / HTTP/1.1\r\n\r\n"
                         + "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n9000000000000000\r\n", .overflow)
    }

    func testBodiesThatLookLikeSizesAreNotRead() {
        // The data of a chunk, and a Content-Length body, are skipped by count.
        assertEverySplit("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n12\r\n8000000000000000\r\n\r\n0\r\n\r\n", .fine)
        assertEverySplit("POST / HTTP/1.1\r\nContent-Length: 18\r\n\r\n8000000000000000\r\n", .fine)
        // After an upgrade request or CONNECT the bytes may be another protocol's.
        assertEverySplit("GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n8000000000000000\r\n", .fine)
        assertEverySplit("CONNECT a:443 HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n8000000000000000\r\n", .fine)
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
        // A DATA payload that contains GOAWAY-looking bytes is skipped by its length.
        let disguised = frame(type: 0, streamID: 1, payload: goAway(code: 2))
        XCTAssertFalse(sawError(disguised, pieceSize: 5))
    }
}
