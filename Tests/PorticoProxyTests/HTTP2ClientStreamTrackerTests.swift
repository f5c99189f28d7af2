import NIOCore
import NIOEmbedded
import NIOHPACK
import NIOHTTP2
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

    /// What happens on the connection, in order: bytes from the client, or a frame header the
    /// server wrote.
    private enum Step {
        case client([UInt8])
        /// The response on `streamID` ends (END_STREAM), or the server resets it.
        case serverEnds(UInt32)
        case serverResets(UInt32)
    }

    /// Runs `steps`, the client's bytes cut into pieces; returns the verdict as an offset into
    /// all the client's bytes.
    private func verdict(_ steps: [Step], pieceSize: Int = 4096) -> Int? {
        var tracker = HTTP2ClientStreamTracker()
        var fed = 0
        for step in steps {
            switch step {
            case .serverEnds(let id): tracker.serverFrame(HTTP2FrameHeader(length: 0, type: 0, flags: 1, streamID: id))
            case .serverResets(let id): tracker.serverFrame(HTTP2FrameHeader(length: 4, type: 3, flags: 0, streamID: id))
            case .client(let bytes):
                var start = 0
                while start < bytes.count {
                    let end = min(start + pieceSize, bytes.count)
                    if let offset = tracker.scan(ByteBuffer(bytes: bytes[start..<end]).readableBytesView) {
                        return fed + start + offset
                    }
                    start = end
                }
                fed += bytes.count
            }
        }
        return nil
    }

    private let pieceSizes = [1, 2, 7, 9, 10, 25, 4096]
    private var opening: [UInt8] { preface + settings }

    func testHeadersAfterTheClientEndedItsStreamAreSpottedWhereverTheReadsAreCut() {
        let before = opening + headers(1, endStream: true) + frame(type: 6, streamID: 0, payload: [UInt8](repeating: 0, count: 8))
        for pieceSize in pieceSizes {
            // The frame's first byte; or, when its header began in an earlier read (passed on
            // already, and harmless there: the handler acts on whole frames only), the start of
            // the read that completes the header. The second step's bytes are cut from its start.
            let completingRead = before.count + 8 / pieceSize * pieceSize
            XCTAssertEqual(verdict([.client(before), .client(headers(1, endStream: false) + frame(type: 0, streamID: 1))],
                                   pieceSize: pieceSize),
                           max(before.count, completingRead), "pieces of \(pieceSize)")
        }
    }

    func testWhetherTheResponseHasEndedDoesNotMatter() {
        // Half-closed (remote) and closed alike: the client's half is what counts.
        let ended = opening + headers(1, endStream: true)
        XCTAssertEqual(verdict([.client(ended + headers(1, endStream: true))]), ended.count)
        XCTAssertEqual(verdict([.client(ended), .serverEnds(1), .client(headers(1, endStream: true))]), ended.count)
        // A response that ended first (an early answer) leaves the client's half open: trailers.
        let uploading = opening + headers(1, endStream: false)
        XCTAssertNil(verdict([.client(uploading), .serverEnds(1), .client(headers(1, endStream: true))]))
    }

    func testEndingByDataOrAResetFromEitherSideClosesTheStream() {
        let open = opening + headers(3, endStream: false)
        let byData = open + frame(type: 0, flags: 1, streamID: 3)
        XCTAssertEqual(verdict([.client(byData + headers(3, endStream: true))]), byData.count)
        let byClientReset = open + frame(type: 3, streamID: 3, payload: [0, 0, 0, 8])
        XCTAssertEqual(verdict([.client(byClientReset + headers(3, endStream: true))]), byClientReset.count)
        // HEADERS the client sent before it learnt of the server's reset. RFC 9113 5.1 asks to
        // ignore them, which needs the header block decoded; the handler ends the connection for
        // them too, with PROTOCOL_ERROR.
        XCTAssertEqual(verdict([.client(open), .serverResets(3), .client(headers(3, endStream: true))]), open.count)
    }

    func testTrailersOnAStreamTheClientStillSendsOnAreNotAnError() {
        let upload = opening + headers(1, endStream: false) + frame(type: 0, streamID: 1)
        let trailers = headers(1, endStream: true)
        for pieceSize in pieceSizes {
            XCTAssertNil(verdict([.client(upload + trailers)], pieceSize: pieceSize), "pieces of \(pieceSize)")
        }
        // The trailers ended the client's half: more HEADERS are the error.
        XCTAssertEqual(verdict([.client(upload + trailers + headers(1, endStream: true))]), upload.count + trailers.count)
    }

    func testNewStreamsUnusedIdsAndTheHandlersOwnErrorsAreLeftToTheHandler() {
        let twoStreams = opening + headers(1, endStream: true) + headers(5, endStream: true)
        let steps: [Step] = [.client(twoStreams)]
        XCTAssertNil(verdict(steps + [.client(headers(7, endStream: true))]))
        // Stream 0 and even ids: PROTOCOL_ERROR, the handler's.
        XCTAssertNil(verdict(steps + [.client(headers(0, endStream: true))]))
        XCTAssertNil(verdict(steps + [.client(headers(2, endStream: true))]))
        // 3 was skipped, never opened: a lower id than the last is PROTOCOL_ERROR (5.1.1), the handler's.
        XCTAssertNil(verdict(steps + [.client(headers(3, endStream: true))]))
        XCTAssertEqual(verdict(steps + [.client(headers(5, endStream: true))]), twoStreams.count)
        XCTAssertEqual(verdict(steps + [.client(headers(1, endStream: true))]), twoStreams.count)
        // Bytes that are not the preface are not followed at all.
        XCTAssertNil(verdict([.client(Array("GET / HTTP/1.1\r\n\r\n".utf8) + headers(1, endStream: true) + headers(1, endStream: true))]))
    }

    func testPayloadsThatLookLikeFramesAreSkippedByTheirLength() {
        let disguised = frame(type: 0, streamID: 1, payload: headers(1, endStream: true))
        for pieceSize in pieceSizes {
            XCTAssertNil(verdict([.client(opening + headers(1, endStream: false)), .client(disguised)],
                                 pieceSize: pieceSize), "pieces of \(pieceSize)")
        }
    }

    func testTooMuchToFollowStopsTheTracker() {
        let resetOneThenHeaders = frame(type: 3, streamID: 1, payload: [0, 0, 0, 8]) + headers(1, endStream: true)
        // Streams the client keeps open (ignored after a graceful GOAWAY, say).
        var many = opening
        for index in 0..<UInt32(HTTP2ClientStreamTracker.maximumTrackedStreams + 1) {
            many += headers(1 + 2 * index, endStream: false)
        }
        XCTAssertNil(verdict([.client(many + resetOneThenHeaders)]))
        // A client that skips ids on every stream.
        var skipping = opening
        for index in 0..<UInt32(HTTP2ClientStreamTracker.maximumOpenedRuns + 1) {
            skipping += headers(1 + 4 * index, endStream: false)
        }
        XCTAssertNil(verdict([.client(skipping + resetOneThenHeaders)]))
        // Below both bounds the same case is judged.
        let few = opening + headers(1, endStream: false) + headers(5, endStream: false)
        XCTAssertEqual(verdict([.client(few + resetOneThenHeaders)]), few.count + 13)
    }

    func testTheFrameScannerHandsOnEachFrameHeaderAndTheLastGoAwayStreamID() {
        var scanner = HTTP2FrameScanner()
        var seen: [String] = []
        let goAway = frame(type: 7, streamID: 0, payload: [0, 0, 0, 9, 0, 0, 0, 0])
        let written = frame(type: 3, streamID: 7, payload: [0, 0, 0, 8]) + frame(type: 0, flags: 1, streamID: 9, payload: [3, 0, 0, 0, 0, 0, 0, 1, 0])
            + goAway + frame(type: 3, streamID: 0x1_0001, payload: [0, 0, 0, 2])
        for byte in written {
            scanner.scan(ByteBuffer(bytes: [byte]).readableBytesView) { seen.append("\($0.type)/\($0.flags)/\($0.streamID)") }
        }
        XCTAssertEqual(seen, ["3/0/7", "0/1/9", "7/0/0", "3/0/65537"])
        XCTAssertEqual(scanner.lastGoAwayStreamID, 9)
        XCTAssertFalse(scanner.sawErrorGoAway, "NO_ERROR is graceful")
    }

    // MARK: The guard, in front of the real NIOHTTP2Handler

    /// A GET's header block: `:method GET`, `:scheme http`, `:path /` (static table) and
    /// `:authority: a`.
    private let getBlock: [UInt8] = [0x82, 0x86, 0x84, 0x41, 0x01, 0x61]

    /// The guard and `NIOHTTP2Handler` on an `EmbeddedChannel`; stream 1 has been requested
    /// (END_STREAM) and answered (END_STREAM), so it is closed on both sides.
    private func connectionWithStreamOneClosed() throws -> EmbeddedChannel {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(HTTP2ConnectionErrorGuard())
        try channel.pipeline.syncOperations.addHandler(NIOHTTP2Handler(mode: .server))
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        try channel.writeInbound(ByteBuffer(bytes: opening + frame(type: 1, flags: 0x5, streamID: 1, payload: getBlock)))
        // The client's SETTINGS, then the request.
        XCTAssertEqual(try channel.readInbound(as: HTTP2Frame.self)?.streamID, 0)
        XCTAssertEqual(try channel.readInbound(as: HTTP2Frame.self)?.streamID, 1)
        XCTAssertNil(try channel.readInbound(as: HTTP2Frame.self))
        try channel.writeOutbound(HTTP2Frame(streamID: 1, payload: .headers(.init(headers: HPACKHeaders([(":status", "200")]),
                                                                                      endStream: true))))
        return channel
    }

    /// The frames the connection wrote, each as its type, its stream id and the 32-bit words its
    /// payload begins with (GOAWAY: last stream id, error code; RST_STREAM: error code).
    private func written(_ channel: EmbeddedChannel) throws -> [(type: UInt8, stream: UInt32, words: [UInt32])] {
        var bytes: [UInt8] = []
        while let data = try channel.readOutbound(as: IOData.self) {
            guard case .byteBuffer(let buffer) = data else { continue }
            bytes += buffer.readableBytesView
        }
        func word(_ at: Int) -> UInt32 { bytes[at..<at + 4].reduce(0) { $0 << 8 | UInt32($1) } & 0x7fff_ffff }
        var found: [(UInt8, UInt32, [UInt32])] = []
        var offset = 0
        while offset + 9 <= bytes.count {
            let length = Int(bytes[offset]) << 16 | Int(bytes[offset + 1]) << 8 | Int(bytes[offset + 2])
            let wordCount = min(length, 8) / 4
            found.append((bytes[offset + 3], word(offset + 5), (0..<wordCount).map { word(offset + 9 + 4 * $0) }))
            offset += 9 + length
        }
        return found
    }

    private func goAways(_ channel: EmbeddedChannel) throws -> [(UInt32, UInt32)] {
        try written(channel).filter { $0.type == 7 }.map { ($0.words[0], $0.words[1]) }
    }

    func testTheGuardAnswersHeadersOnAClosedStreamWithStreamClosedThenCloses() throws {
        for pieces in [1, 2] {
            let channel = try connectionWithStreamOneClosed()
            let again = frame(type: 1, flags: 0x5, streamID: 1, payload: getBlock)
            if pieces == 2 {
                // The frame's header cut across two reads: its first bytes are already with the handler.
                try channel.writeInbound(ByteBuffer(bytes: again[..<4]))
                try channel.writeInbound(ByteBuffer(bytes: again[4...] + settings))
            } else {
                try channel.writeInbound(ByteBuffer(bytes: again + settings))
            }
            let sent = try goAways(channel)
            XCTAssertEqual(sent.map(\.0), [1], "in \(pieces) reads")
            XCTAssertEqual(sent.map(\.1), [0x5], "STREAM_CLOSED, in \(pieces) reads")
            XCTAssertFalse(channel.isActive)
            XCTAssertNil(try channel.readInbound(as: HTTP2Frame.self), "the frame never reached the handler")
        }
    }

    func testAConnectionErrorTheHandlerFoundFirstKeepsItsOwnCode() throws {
        let channel = try connectionWithStreamOneClosed()
        // DATA on stream 0 (PROTOCOL_ERROR, the handler's), then HEADERS on the closed stream.
        // The channel reports the handler's error by throwing it.
        XCTAssertThrowsError(try channel.writeInbound(ByteBuffer(bytes: frame(type: 0, streamID: 0) + frame(type: 1, flags: 0x5, streamID: 1, payload: getBlock))))
        let sent = try goAways(channel)
        XCTAssertEqual(sent.map(\.1), [0x1], "one GOAWAY, the handler's PROTOCOL_ERROR")
        XCTAssertFalse(channel.isActive)
    }

    func testHeadersWhileTheResponseIsUnderWayEndTheConnectionToo() throws {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(HTTP2ConnectionErrorGuard())
        try channel.pipeline.syncOperations.addHandler(NIOHTTP2Handler(mode: .server))
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        // Half-closed (remote): the handler alone would reset the stream with PROTOCOL_ERROR.
        let request = frame(type: 1, flags: 0x5, streamID: 1, payload: getBlock)
        try channel.writeInbound(ByteBuffer(bytes: opening + request + request))
        let frames = try written(channel)
        XCTAssertFalse(frames.contains { $0.type == 3 }, "no RST_STREAM")
        let sent = frames.filter { $0.type == 7 }.map { ($0.words[0], $0.words[1]) }
        XCTAssertEqual(sent.map(\.0), [1])
        XCTAssertEqual(sent.map(\.1), [0x5], "STREAM_CLOSED")
        XCTAssertFalse(channel.isActive)
    }
}
