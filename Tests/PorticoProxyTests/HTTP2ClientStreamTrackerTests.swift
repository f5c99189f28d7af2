import NIOCore
import NIOEmbedded
@testable import PorticoProxy
import XCTest

final class HTTP2ClientStreamTrackerTests: XCTestCase {
    private let preface = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)
    private let settings: [UInt8] = [0, 0, 0, 4, 0, 0, 0, 0, 0]

    private func frame(type: UInt8, flags: UInt8 = 0, streamID: UInt32, payload: [UInt8] = [1, 2, 3]) -> [UInt8] {
        let length = payload.count
        return [UInt8(length >> 16 & 0xFF), UInt8(length >> 8 & 0xFF), UInt8(length & 0xFF), type, flags]
            + withUnsafeBytes(of: streamID.bigEndian, Array.init) + payload
    }

    private func headers(_ streamID: UInt32, endStream: Bool) -> [UInt8] {
        frame(type: 1, flags: 0x4 | (endStream ? 1 : 0), streamID: streamID)
    }

    /// Feeds `bytes` cut into pieces; returns the verdict as an offset into the whole input.
    private func verdict(_ bytes: [UInt8], pieceSize: Int, serverResets: [UInt32] = []) -> Int? {
        var tracker = HTTP2ClientStreamTracker()
        for id in serverResets { tracker.serverReset(id) }
        var start = 0
        while start < bytes.count {
            let end = min(start + pieceSize, bytes.count)
            if let offset = tracker.scan(ByteBuffer(bytes: bytes[start..<end]).readableBytesView) {
                return start + offset
            }
            start = end
        }
        return nil
    }

    private let pieceSizes = [1, 2, 7, 9, 10, 25, 4096]

    func testHeadersAfterTheClientEndedItsStreamAreSpottedWhereverTheReadsAreCut() {
        let opening = preface + settings + headers(1, endStream: true) + frame(type: 6, streamID: 0, payload: [UInt8](repeating: 0, count: 8))
        let input = opening + headers(1, endStream: false) + frame(type: 0, streamID: 1)
        for pieceSize in pieceSizes {
            // The frame's first byte; or, when its header began in an earlier read (already
            // passed on, and harmless there: the handler acts on whole frames only), the start
            // of the read that completes the header.
            let completingRead = (opening.count + 8) / pieceSize * pieceSize
            XCTAssertEqual(verdict(input, pieceSize: pieceSize), max(opening.count, completingRead), "pieces of \(pieceSize)")
        }
        XCTAssertEqual(verdict(input, pieceSize: 4096), opening.count)
    }

    func testEndingByDataOrResetClosesTheClientsHalf() {
        let byData = preface + settings + headers(3, endStream: false) + frame(type: 0, flags: 1, streamID: 3)
        let byReset = preface + settings + headers(3, endStream: false) + frame(type: 3, streamID: 3, payload: [0, 0, 0, 8])
        for opening in [byData, byReset] {
            XCTAssertEqual(verdict(opening + headers(3, endStream: true), pieceSize: 4096), opening.count)
        }
    }

    func testTrailersOnAStreamTheClientStillSendsOnAreNotAnError() {
        let upload = preface + settings + headers(1, endStream: false) + frame(type: 0, streamID: 1)
        let trailers = headers(1, endStream: true)
        for pieceSize in pieceSizes {
            XCTAssertNil(verdict(upload + trailers, pieceSize: pieceSize), "pieces of \(pieceSize)")
            // The trailers ended the client's half: a second HEADERS is the error.
            XCTAssertEqual(verdict(upload + trailers + headers(1, endStream: true), pieceSize: 4096), upload.count + trailers.count)
        }
    }

    func testNewStreamsAndTheHandlersOwnErrorsAreLeftToTheHandler() {
        // Higher ids open new streams; stream 0 and even ids are PROTOCOL_ERRORs the handler sends.
        let opening = preface + settings + headers(1, endStream: true) + headers(5, endStream: true)
        XCTAssertNil(verdict(opening + headers(7, endStream: true), pieceSize: 3))
        XCTAssertNil(verdict(opening + headers(0, endStream: true), pieceSize: 3))
        XCTAssertNil(verdict(opening + headers(2, endStream: true), pieceSize: 3))
        // A stream id skipped over (3) was never opened, yet it is below the highest: closed (5.1.1).
        XCTAssertEqual(verdict(opening + headers(3, endStream: true), pieceSize: 4096), opening.count)
        // Bytes that are not the preface are not followed at all.
        XCTAssertNil(verdict(Array("GET / HTTP/1.1\r\n\r\n".utf8) + headers(1, endStream: true) + headers(1, endStream: true),
                             pieceSize: 4))
    }

    func testAStreamTheServerResetIsTheHandlersToIgnore() {
        // HEADERS the client sent before it learnt of the server's RST_STREAM (RFC 9113 5.1).
        let opening = preface + settings + headers(1, endStream: false)
        XCTAssertNil(verdict(opening + headers(1, endStream: true), pieceSize: 5, serverResets: [1]))
        // Only the most recent resets are remembered.
        var tracker = HTTP2ClientStreamTracker()
        XCTAssertNil(tracker.scan(ByteBuffer(bytes: preface + settings + headers(1, endStream: true)).readableBytesView))
        tracker.serverReset(1)
        for id in 0..<UInt32(HTTP2ClientStreamTracker.rememberedResets) { tracker.serverReset(1001 + 2 * id) }
        XCTAssertEqual(tracker.scan(ByteBuffer(bytes: headers(1, endStream: true)).readableBytesView), 0)
    }

    func testPayloadsThatLookLikeFramesAreSkippedByTheirLength() {
        let disguised = frame(type: 0, streamID: 1, payload: headers(1, endStream: true))
        let input = preface + settings + headers(1, endStream: false) + disguised
        for pieceSize in pieceSizes {
            XCTAssertNil(verdict(input, pieceSize: pieceSize), "pieces of \(pieceSize)")
        }
    }

    func testTooManyOpenStreamsStopsTheTracker() {
        var bytes = preface + settings
        for index in 0..<UInt32(HTTP2ClientStreamTracker.maximumTrackedStreams + 1) {
            bytes += headers(1 + 2 * index, endStream: false)
        }
        // Past the bound nothing is judged, not even a plain case.
        bytes += frame(type: 3, streamID: 1, payload: [0, 0, 0, 8]) + headers(1, endStream: true)
        XCTAssertNil(verdict(bytes, pieceSize: 4096))
    }

    func testTheFrameScannerReportsEachResetTheServerSends() {
        var scanner = HTTP2FrameScanner()
        var resets: [UInt32] = []
        let written = frame(type: 3, streamID: 7, payload: [0, 0, 0, 8]) + frame(type: 0, streamID: 9, payload: [3, 0, 0, 0, 0, 0, 0, 1, 0])
            + frame(type: 3, streamID: 0x1_0001, payload: [0, 0, 0, 2])
        for byte in written {
            scanner.scan(ByteBuffer(bytes: [byte]).readableBytesView) { resets.append($0) }
        }
        XCTAssertEqual(resets, [7, 0x1_0001])
    }

    // MARK: The guard, byte for byte

    func testTheGuardPassesTheFramesBeforeThenAnswersStreamClosedAndCloses() throws {
        let channel = EmbeddedChannel(handler: HTTP2ConnectionErrorGuard())
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        let before = preface + settings + headers(1, endStream: true) + headers(3, endStream: true)
        try channel.writeInbound(ByteBuffer(bytes: before + headers(1, endStream: true) + settings))
        var passed = ByteBuffer()
        while var part = try channel.readInbound(as: ByteBuffer.self) { passed.writeBuffer(&part) }
        XCTAssertEqual(Array(passed.readableBytesView), before, "the offending frame and all after it are held back")
        let written = try XCTUnwrap(channel.readOutbound(as: IOData.self))
        guard case .byteBuffer(let goAway) = written else { return XCTFail("\(written)") }
        // GOAWAY, last stream 3, STREAM_CLOSED.
        XCTAssertEqual(Array(goAway.readableBytesView), [0, 0, 8, 7, 0, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 5])
        XCTAssertFalse(channel.isActive)
    }
}
