import Foundation
import NIOCore
@testable import PorticoFunctions
import PorticoProxy
import XCTest

/// An HTTP request as an API Gateway HTTP API event (payload format 2.0), and a handler's
/// result as the response, by the rules AWS documents for that format.
final class LambdaTranslationTests: XCTestCase {
    private func event(_ request: ExecRequest) throws -> [String: Any] {
        let buffer = LambdaEvent.encode(request, requestID: "req-1", epochMilliseconds: 1_583_348_638_390,
                                        allocator: ByteBufferAllocator())
        return try XCTUnwrap(JSONSerialization.jsonObject(with: Data(buffer.readableBytesView)) as? [String: Any])
    }

    func testTheEventHasThePayloadFormat2Shape() throws {
        let request = ExecRequest(
            method: "POST", path: "/my/path", query: "parameter1=value1&parameter1=value2&parameter2=a%20b",
            headers: [("Host", "api.example.com"), ("X-Multi", "one"), ("x-multi", "two"), ("Cookie", "c1=1; c2=2"),
                      ("cookie", "c3=3"), ("User-Agent", "curl/8"), ("Content-Type", "application/json")],
            body: ByteBuffer(string: "{\"quote\":\"\\\"\\n\"}"), remoteAddress: "127.0.0.1", protocolName: "HTTP/1.1",
            requestID: "req-1")
        let event = try event(request)
        XCTAssertEqual(event["version"] as? String, "2.0")
        XCTAssertEqual(event["routeKey"] as? String, "$default")
        XCTAssertEqual(event["rawPath"] as? String, "/my/path")
        XCTAssertEqual(event["rawQueryString"] as? String, "parameter1=value1&parameter1=value2&parameter2=a%20b")
        XCTAssertEqual(event["cookies"] as? [String], ["c1=1", "c2=2", "c3=3"])
        let headers = try XCTUnwrap(event["headers"] as? [String: String])
        XCTAssertEqual(headers["x-multi"], "one,two")
        XCTAssertEqual(headers["host"], "api.example.com")
        XCTAssertNil(headers["cookie"], "cookies travel in `cookies`")
        XCTAssertEqual(event["queryStringParameters"] as? [String: String], ["parameter1": "value1,value2", "parameter2": "a b"])
        XCTAssertNil(event["pathParameters"])
        XCTAssertNil(event["stageVariables"])
        let context = try XCTUnwrap(event["requestContext"] as? [String: Any])
        XCTAssertEqual(context["domainName"] as? String, "api.example.com")
        XCTAssertEqual(context["domainPrefix"] as? String, "api")
        XCTAssertEqual(context["requestId"] as? String, "req-1")
        XCTAssertEqual(context["stage"] as? String, "$default")
        XCTAssertEqual(context["routeKey"] as? String, "$default")
        XCTAssertEqual(context["time"] as? String, "04/Mar/2020:19:03:58 +0000")
        XCTAssertEqual((context["timeEpoch"] as? NSNumber)?.int64Value, 1_583_348_638_390)
        let http = try XCTUnwrap(context["http"] as? [String: String])
        XCTAssertEqual(http, ["method": "POST", "path": "/my/path", "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1",
                              "userAgent": "curl/8"])
        XCTAssertEqual(event["body"] as? String, "{\"quote\":\"\\\"\\n\"}")
        XCTAssertEqual(event["isBase64Encoded"] as? Bool, false)
    }

    func testABinaryBodyIsBase64AndNoBodyIsLeftOut() throws {
        let bytes: [UInt8] = [0, 1, 2, 0xFF, 0xFE, 10]
        let binary = try event(ExecRequest(method: "PUT", path: "/", query: "", headers: [("content-type", "application/octet-stream")],
                                           body: ByteBuffer(bytes: bytes), remoteAddress: "10.0.0.1"))
        XCTAssertEqual(binary["isBase64Encoded"] as? Bool, true)
        XCTAssertEqual((binary["body"] as? String).flatMap { Data(base64Encoded: $0) }.map(Array.init), bytes)
        XCTAssertNil(binary["queryStringParameters"])
        XCTAssertNil(binary["cookies"])

        // Text that is not UTF-8 is not text.
        let latin1 = try event(ExecRequest(method: "POST", path: "/", query: "", headers: [("content-type", "text/plain")],
                                           body: ByteBuffer(bytes: [0x63, 0x61, 0x66, 0xE9]), remoteAddress: "10.0.0.1"))
        XCTAssertEqual(latin1["isBase64Encoded"] as? Bool, true)

        let empty = try event(ExecRequest(method: "GET", path: "/", query: "", headers: [], body: ByteBuffer(), remoteAddress: "::1"))
        XCTAssertNil(empty["body"])
        XCTAssertEqual(empty["isBase64Encoded"] as? Bool, false)
    }

    private func decode(_ json: String) -> LambdaResult { LambdaResult.decode(Array(json.utf8)) }

    func testAStatusCodeResultSaysEverything() {
        let result = decode("""
        {"statusCode": 201, "headers": {"X-One": "1", "Content-Type": "text/plain", "content-length": "99", "bad name": "x",
         "x-split": "a\\r\\nb"}, "multiValueHeaders": {"x-many": ["a", "b"]}, "cookies": ["a=1; Path=/", "b=2"], "body": "made"}
        """)
        XCTAssertEqual(result.status, 201)
        XCTAssertEqual(result.headers.map { "\($0.0): \($0.1)" },
                       ["content-type: text/plain", "x-one: 1", "x-many: a", "x-many: b", "set-cookie: a=1; Path=/", "set-cookie: b=2"])
        XCTAssertEqual(String(decoding: result.body, as: UTF8.self), "made")
    }

    func testABase64BodyIsDecodedAndContentTypeDefaultsToJSON() {
        let result = decode(#"{"statusCode": 200, "body": "AAEC/w==", "isBase64Encoded": true}"#)
        XCTAssertEqual(result.body, [0, 1, 2, 255])
        XCTAssertEqual(result.headers.first?.0, "content-type")
        XCTAssertEqual(result.headers.first?.1, "application/json")
        XCTAssertEqual(decode(#"{"statusCode": 200, "body": "not base64!", "isBase64Encoded": true}"#), .internalServerError)
        XCTAssertEqual(decode(#"{"statusCode": 204}"#).body, [])
    }

    func testAnythingElseIsInferredAsA200WithTheResultAsJSON() {
        let object = decode(#"{"message": "hi", "n": 1}"#)
        XCTAssertEqual(object.status, 200)
        XCTAssertEqual(object.headers.map { "\($0.0): \($0.1)" }, ["content-type: application/json"])
        XCTAssertEqual(String(decoding: object.body, as: UTF8.self), #"{"message": "hi", "n": 1}"#)
        // A JSON string is its text (AWS's own example: "Hello from Lambda!").
        XCTAssertEqual(String(decoding: decode(#""Hello from Lambda!""#).body, as: UTF8.self), "Hello from Lambda!")
        XCTAssertEqual(String(decoding: decode("42").body, as: UTF8.self), "42")
        XCTAssertEqual(String(decoding: decode("[1,2]").body, as: UTF8.self), "[1,2]")
        XCTAssertEqual(decode("null").status, 200)
    }

    func testAResultThatIsNotJSONOrHasABadStatusIsAnInternalServerError() {
        XCTAssertEqual(decode("not json"), .internalServerError)
        XCTAssertEqual(decode(#"{"statusCode": 99}"#), .internalServerError)
        XCTAssertEqual(decode(#"{"statusCode": "abc"}"#), .internalServerError)
        XCTAssertEqual(LambdaResult.internalServerError.status, 502)
        XCTAssertEqual(String(decoding: LambdaResult.internalServerError.body, as: UTF8.self), #"{"message":"Internal Server Error"}"#)
    }
}
