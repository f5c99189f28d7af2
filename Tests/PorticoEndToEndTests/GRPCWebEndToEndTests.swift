import Foundation
import XCTest

/// gRPC-Web from HTTP/1.1 clients to a gRPC service, through the real binary: a real gRPC-Web
/// client (`sonora`, from PyPI), requests built by hand with curl (binary and text), and CORS.
final class GRPCWebEndToEndTests: GatewayTestCase {
    private var server: PythonPeer?

    override func tearDown() {
        server?.stop()
        super.tearDown()
    }

    private func start() throws {
        let port = try freePort()
        server = try PythonPeer(script: GRPCPeers.server, arguments: [String(port)], marker: marker)
        gateway = try PorticoProcess(config: """
            services:
              greeter: { endpoints: [127.0.0.1:\(port)], protocol: h2c }
            routes:
              - name: web
                match: { grpc: { service: test.Echo } }
                service: greeter
                cors:
                  allowOrigins: ["https://app.example.com"]
                  allowMethods: [POST]
                  allowHeaders: [content-type, x-grpc-web, x-user-agent, grpc-timeout]
                  exposeHeaders: [grpc-status, grpc-message]
                  maxAge: 10m
            """)
    }

    /// A gRPC-Web client from PyPI, unary and server streaming (what it implements).
    static let sonoraClient = #"""
        import sys, grpc, sonora.client
        same = lambda value: value
        with sonora.client.insecure_web_channel(sys.argv[1]) as channel:
            unary = channel.unary_unary("/test.Echo/Echo", request_serializer=same, response_deserializer=same)
            reply, call = unary.with_call(b"hello web", timeout=10)
            print("reply=" + reply.decode())
            print("trailers=" + ",".join("%s:%s" % pair for pair in call.trailing_metadata()))
            stream = channel.unary_stream("/test.Echo/Count", request_serializer=same, response_deserializer=same)
            print("replies=" + ",".join(r.decode() for r in stream(b"3", timeout=10)))
            try:
                unary(b"x", timeout=10, metadata=[("x-fail", "NOT_FOUND")])
            except grpc.RpcError as error:
                print("code=" + error.code().name)
                print("details=" + str(error.details()))
        """#

    func testARealGRPCWebClient() throws {
        try start()
        let result = try PythonPeer.run(script: Self.sonoraClient, arguments: [gateway.http])
        let values = GRPCPeers.values(result.output)
        XCTAssertEqual(values["reply"], "hello web", result.output)
        XCTAssertEqual(values["trailers"], "grpc-status:0,grpc-message:,x-trailer:yes", "trailers arrive as the last frame")
        XCTAssertEqual(values["replies"], "0,1,2")
        XCTAssertEqual(values["code"], "NOT_FOUND")
        XCTAssertEqual(values["details"], "failed on purpose")
    }

    func testBinaryRequestsByHand() throws {
        try start()
        let response = try Curl.run(["-H", "content-type: application/grpc-web+proto", "-H", "x-grpc-web: 1",
                                     "--data-binary", "@-", "\(gateway.http)/test.Echo/Echo"],
                                    stdin: Data([0, 0, 0, 0, 5] + Array("hello".utf8)))
        XCTAssertEqual(response.status, 200)
        XCTAssertEqual(response.header("content-type"), "application/grpc-web+proto")
        let body = Array(response.body.utf8)
        // The message, then the trailer frame (flag 0x80) with the status in it.
        XCTAssertEqual(Array(body.prefix(10)), [0, 0, 0, 0, 5] + Array("hello".utf8))
        XCTAssertTrue(response.body.contains("grpc-status:0\r\n"), response.body)
        XCTAssertTrue(response.body.contains("x-trailer:yes\r\n"), response.body)
    }

    func testTextRequestsByHand() throws {
        try start()
        // "AAAAAAVoZWxsbw==" is one message, "hello"; split in two padded segments as a
        // streaming client may send it.
        let response = try Curl.run(["-H", "content-type: application/grpc-web-text", "--data-binary", "AAAAAAVo ZWxsbw==",
                                     "\(gateway.http)/test.Echo/Echo"])
        XCTAssertEqual(response.status, 200)
        XCTAssertEqual(response.header("content-type"), "application/grpc-web-text+proto")
        let decoded = Self.decodePaddedSegments(response.body)
        XCTAssertEqual(Array(decoded.prefix(10)), [0, 0, 0, 0, 5] + Array("hello".utf8), response.body)
        XCTAssertTrue(String(decoding: decoded, as: UTF8.self).contains("grpc-status:0"), response.body)

        let bad = try Curl.run(["-H", "content-type: application/grpc-web-text", "--data-binary", "AAA*AAVo",
                                "\(gateway.http)/test.Echo/Echo"])
        // A bad request (400), said the gRPC way as every gateway answer to a gRPC call is:
        // INTERNAL, in the head of an otherwise empty answer.
        XCTAssertEqual(bad.status, 200)
        XCTAssertEqual(bad.header("grpc-status"), "13", "\(bad.headers)")
        XCTAssertEqual(bad.header("content-type"), "application/grpc-web-text+proto")
    }

    func testCORSPreflightAndAnswers() throws {
        try start()
        let preflight = try Curl.run(["-X", "OPTIONS", "-H", "origin: https://app.example.com",
                                      "-H", "access-control-request-method: POST",
                                      "-H", "access-control-request-headers: content-type,x-grpc-web",
                                      "\(gateway.http)/test.Echo/Echo"])
        XCTAssertEqual(preflight.status, 200)
        XCTAssertEqual(preflight.header("access-control-allow-origin"), "https://app.example.com")
        XCTAssertEqual(preflight.header("access-control-allow-methods"), "POST")
        XCTAssertEqual(preflight.header("access-control-max-age"), "600")
        XCTAssertTrue(server?.output.contains("call") == false, "the preflight never reached the service")

        let other = try Curl.run(["-X", "OPTIONS", "-H", "origin: https://elsewhere.example.com",
                                  "-H", "access-control-request-method: POST", "\(gateway.http)/test.Echo/Echo"])
        XCTAssertEqual(other.status, 403)
        XCTAssertNil(other.header("access-control-allow-origin"))

        let call = try Curl.run(["-H", "origin: https://app.example.com", "-H", "content-type: application/grpc-web+proto",
                                 "--data-binary", "@-", "\(gateway.http)/test.Echo/Echo"],
                                stdin: Data([0, 0, 0, 0, 1, 0x61]))
        XCTAssertEqual(call.status, 200)
        XCTAssertEqual(call.header("access-control-allow-origin"), "https://app.example.com")
        XCTAssertEqual(call.header("access-control-expose-headers"), "grpc-status, grpc-message")
    }

    /// Base64 made of padded segments one after another, as gRPC-Web text answers are (each
    /// message encoded on its own): Foundation's decoder takes one segment at a time.
    static func decodePaddedSegments(_ text: String) -> [UInt8] {
        var decoded: [UInt8] = []
        var segment = ""
        var group = ""
        for character in text where !character.isWhitespace {
            group.append(character)
            guard group.count == 4 else { continue }
            segment += group
            if group.hasSuffix("=") {
                decoded += Data(base64Encoded: segment).map(Array.init) ?? []
                segment = ""
            }
            group = ""
        }
        if !segment.isEmpty { decoded += Data(base64Encoded: segment).map(Array.init) ?? [] }
        return decoded
    }
}
