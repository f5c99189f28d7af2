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
        for invalid in ["a, b", "a,b", "a/b", "a@b", "a b", "[::1", "[]", "a:b", "a:123456", "a:65536", "a\u{0}b", "a\tb", "[::1]x", "a:80:80"] {
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

    private enum Scanned: Equatable {
        case fine
        /// The offending request starts at this offset of the whole text.
        case overflow(at: Int)
    }

    private func scan(_ pieces: [String]) -> Scanned {
        var scanner = ChunkSizeScanner()
        var consumed = 0
        for piece in pieces {
            let verdict = Array(piece.utf8).withUnsafeBytes { scanner.scan($0) }
            if case .overflow(let start) = verdict { return .overflow(at: consumed + start) }
            consumed += piece.utf8.count
        }
        return .fine
    }

    /// Every way of cutting `text` in two gives `expected`. An overflow is reported at the start
    /// of the offending request, or at the start of the second piece when the request began in
    /// the first and its overflow shows only in the second.
    private func assertEverySplit(_ text: String, _ expected: Scanned, file: StaticString = #filePath, line: UInt = #line) {
        let bytes = Array(text.utf8)
        // The shortest prefix in which the overflow shows.
        let detected = (0...bytes.count).first { scan([String(decoding: bytes[..<$0], as: UTF8.self)]) != .fine } ?? bytes.count
        for cut in 0...bytes.count {
            let pieces = [String(decoding: bytes[..<cut], as: UTF8.self), String(decoding: bytes[cut...], as: UTF8.self)]
            var wanted = expected
            if case .overflow(let start) = expected, cut > start, cut < detected { wanted = .overflow(at: cut) }
            XCTAssertEqual(scan(pieces), wanted, "cut at \(cut)", file: file, line: line)
        }
    }

    func testChunkSizesWithinSixtyThreeBitsAreFine() {
        assertEverySplit("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n0\r\n\r\n", .fine)
        assertEverySplit("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n7fffffffffffffff\r\n", .fine)
        assertEverySplit("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n00000000000000000001\r\nx\r\n0\r\n\r\n", .fine)
    }

    func testChunkSizesOfSixtyThreeBitsOrMoreOverflow() {
        assertEverySplit("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n8000000000000000\r\n", .overflow(at: 0))
        assertEverySplit("POST / HTTP/1.1\r\nTransfer-Encoding: gzip, Chunked\r\n\r\nFFFFFFFFFFFFFFFFF\r\n", .overflow(at: 0))
        // In a later chunk, and in a later pipelined request (the ones before it are fine).
        assertEverySplit("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n10000000000000000\r\n", .overflow(at: 0))
        let before = "POST / HTTP/1.1\r\nContent-Length: 16\r\n\r\n8000000000000000"
            + "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nTrailer: 1\r\n\r\n"
            + "GET / HTTP/1.1\r\n\r\n"
        assertEverySplit(before + "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n9000000000000000\r\n",
                         .overflow(at: before.utf8.count))
        // An Upgrade without `Connection: upgrade` is no upgrade to llhttp, nor to the scanner.
        assertEverySplit("POST / HTTP/1.1\r\nUpgrade: foo\r\nTransfer-Encoding: chunked\r\n\r\n8000000000000000\r\n", .overflow(at: 0))
        // An upgrade request's own body is read by llhttp before it stops: so here too.
        assertEverySplit("POST / HTTP/1.1\r\nUpgrade: foo\r\nConnection: keep-alive, Upgrade\r\nTransfer-Encoding: chunked\r\n\r\n"
                         + "8000000000000000\r\n", .overflow(at: 0))
    }

    func testBodiesThatLookLikeSizesAreNotRead() {
        // The data of a chunk, and a Content-Length body, are skipped by count.
        assertEverySplit("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n12\r\n8000000000000000\r\n\r\n0\r\n\r\n", .fine)
        assertEverySplit("POST / HTTP/1.1\r\nContent-Length: 18\r\n\r\n8000000000000000\r\n", .fine)
        // After an upgrade request (and its body) or CONNECT the bytes may be another protocol's.
        assertEverySplit("GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n8000000000000000\r\n", .fine)
        assertEverySplit("POST / HTTP/1.1\r\nUpgrade: x\r\nConnection: upgrade\r\nContent-Length: 2\r\n\r\nhi8000000000000000\r\n", .fine)
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
