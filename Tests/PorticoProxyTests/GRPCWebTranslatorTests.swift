import NIOCore
import PorticoHTTP1
import XCTest
@testable import PorticoProxy

final class GRPCWebTranslatorTests: XCTestCase {
    private let allocator = ByteBufferAllocator()

    private func buffer(_ bytes: [UInt8]) -> ByteBuffer {
        var buffer = allocator.buffer(capacity: bytes.count)
        buffer.writeBytes(bytes)
        return buffer
    }

    func testTextRequestBodiesDecodeWhereverTheyAreCut() throws {
        let message: [UInt8] = [0, 0, 0, 0, 11] + Array("hello world".utf8)
        let text = Array(Data(message).base64EncodedString().utf8)
        for cut in 0...text.count {
            var translator = GRPCWebTranslator(text: true)
            var decoded: [UInt8] = []
            for part in [Array(text[..<cut]), Array(text[cut...])] {
                let output = try XCTUnwrap(translator.requestBody(buffer(part), allocator: allocator))
                decoded += output.readableBytesView
            }
            XCTAssertTrue(translator.requestEnded(), "cut at \(cut)")
            XCTAssertEqual(decoded, message, "cut at \(cut)")
        }
    }

    func testPaddedSegmentsOneAfterAnother() throws {
        var translator = GRPCWebTranslator(text: true)
        let output = try XCTUnwrap(translator.requestBody(buffer(Array("YQ==Yg==\r\nYw==".utf8)), allocator: allocator))
        XCTAssertEqual(Array(output.readableBytesView), Array("abc".utf8))
    }

    func testATextBodyThatIsNotBase64IsRefused() {
        var translator = GRPCWebTranslator(text: true)
        XCTAssertNil(translator.requestBody(buffer(Array("AB*D".utf8)), allocator: allocator))
        var unfinished = GRPCWebTranslator(text: true)
        XCTAssertNotNil(unfinished.requestBody(buffer(Array("ABC".utf8)), allocator: allocator))
        XCTAssertFalse(unfinished.requestEnded(), "a body that stops inside a group is incomplete")
    }

    func testBinaryBodiesPassAsTheyAre() throws {
        var translator = GRPCWebTranslator(text: false)
        let part = buffer([0, 0, 0, 0, 1, 0x61])
        XCTAssertEqual(translator.requestBody(part, allocator: allocator), part)
        XCTAssertEqual(translator.responseBody(part, allocator: allocator), part)
    }

    func testTrailersBecomeTheLastFrame() throws {
        let translator = GRPCWebTranslator(text: false)
        let trailers = HTTPFieldList([("Grpc-Status", "0"), ("grpc-message", "")])
        let frame = try XCTUnwrap(translator.responseEnd(trailers: trailers, allocator: allocator))
        let lines = Array("grpc-status:0\r\ngrpc-message:\r\n".utf8)
        XCTAssertEqual(Array(frame.readableBytesView), [0x80, 0, 0, 0, UInt8(lines.count)] + lines)
        let trailersOnly = GRPCWebTranslator(text: false)
        XCTAssertNil(trailersOnly.responseEnd(trailers: nil, allocator: allocator), "a trailers-only answer adds nothing")
    }

    func testTextAnswersArePaddedPartByPartAndDecodeWhole() throws {
        let body: [UInt8] = Array(0...200)
        for cut in [0, 1, 2, 3, 4, 100, 199, 201] {
            let translator = GRPCWebTranslator(text: true)
            var text: [UInt8] = []
            for part in [Array(body[..<cut]), Array(body[cut...])] where !part.isEmpty {
                let encoded = Array(translator.responseBody(buffer(part), allocator: allocator).readableBytesView)
                // Each part is whole base64 on its own: a message is never held back.
                XCTAssertEqual(Data(base64Encoded: Data(encoded)).map(Array.init), part, "cut at \(cut)")
                text += encoded
            }
            text += try XCTUnwrap(translator.responseEnd(trailers: HTTPFieldList([("grpc-status", "0")]), allocator: allocator))
                .readableBytesView
            // A reader of padded segments (as gRPC-Web clients are, and as the request side is).
            var reader = GRPCWebTranslator(text: true)
            let decoded = try XCTUnwrap(reader.requestBody(buffer(text), allocator: allocator))
            let frame = Array("grpc-status:0\r\n".utf8)
            XCTAssertEqual(Array(decoded.readableBytesView), body + [0x80, 0, 0, 0, UInt8(frame.count)] + frame, "cut at \(cut)")
        }
    }

    func testHeadsBothWays() {
        var request = RequestHead(method: "POST", target: "/a.B/C", version: .http1_1,
                                  fields: HTTPFieldList([("content-type", "application/grpc-web-text"), ("content-length", "12")]))
        GRPCWebTranslator.upstreamHead(&request, text: true)
        XCTAssertEqual(request.fields.firstValue(of: "content-type"), "application/grpc")
        XCTAssertNil(request.fields.firstValue(of: "content-length"))
        XCTAssertEqual(request.fields.firstValue(of: "transfer-encoding"), "chunked")

        var response = ResponseHead(status: 200, fields: HTTPFieldList([("content-type", "application/grpc+proto"),
                                                                          ("content-length", "7")]))
        GRPCWebTranslator(text: false).responseHead(&response)
        XCTAssertEqual(response.fields.firstValue(of: "content-type"), "application/grpc-web+proto")
        XCTAssertNil(response.fields.firstValue(of: "content-length"))
    }
}
