import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// `requestHeaders` and `responseHeaders` through the real binary, with curl over HTTP/1.1 and
/// h2c: what a service, an `http` function and an `exec` function receive, and what the
/// client then sees.
final class HeaderPolicyEndToEndTests: GatewayTestCase {
    /// A worker that answers with the request's header fields, one `name: value` line each.
    private static let headerEchoWorker = PythonWorker.script(
        body: #""".join(f"{k.lower()}: {v}\n" for k, v in self.headers.items())"#)

    private static let requestEdits = """
        requestHeaders:
              set: { x-env: prod, x-request-id: from-route }
              add: { x-tag: route }
              remove: [x-debug, x-forwarded-for]
        """

    private func config(closedPort: Int) -> String {
        """
        services:
          backend: { endpoints: [\(upstream.address)] }
          down: { endpoints: [127.0.0.1:\(closedPort)] }
        routes:
          - match: { prefix: /service/ }
            service: backend
            \(Self.requestEdits)
            responseHeaders:
              set: { cache-control: no-store }
              add: { x-added: "1" }
              remove: [x-upstream]
          - match: { prefix: /function/ }
            function: echo
            \(Self.requestEdits)
            responseHeaders:
              set: { cache-control: no-store }
              add: { x-added: "1" }
              remove: [server]
          - match: { prefix: /exec/ }
            function: envexec
            \(Self.requestEdits)
            responseHeaders:
              set: { cache-control: no-store }
          - match: { prefix: /down/ }
            service: down
            responseHeaders:
              set: { cache-control: "public, max-age=3600" }
          - match: { prefix: /plain-function/ }
            function: echo
          - match: { prefix: / }
            service: backend
        """
    }

    private func start() throws {
        let closed = try freePort()
        gateway = try PorticoProcess(config: config(closedPort: closed)) { root in
            try self.writeFunction("echo", script: Self.headerEchoWorker, in: root)
            let folder = root.appendingPathComponent("Functions/envexec")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            try "#!/bin/sh\necho \"env=$HTTP_X_ENV tag=$HTTP_X_TAG debug=${HTTP_X_DEBUG:-none} id=$HTTP_X_REQUEST_ID proto=$HTTP_X_FORWARDED_PROTO xff=${HTTP_X_FORWARDED_FOR:-none} proxy=${HTTP_PROXY:-none}\"\n"
                .write(to: folder.appendingPathComponent("run.sh"), atomically: true, encoding: .utf8)
            chmod(folder.appendingPathComponent("run.sh").path, 0o755)
            try "command: [\"./run.sh\"]\nmode: exec\nroutes: []\n"
                .write(to: folder.appendingPathComponent("function.yaml"), atomically: true, encoding: .utf8)
        }
    }

    private let clientHeaders = ["-H", "X-Env: dev", "-H", "X-Tag: client", "-H", "X-Debug: 1"]
    private let protocols: [(name: String, arguments: [String])] = [("HTTP/1.1", ["--http1.1"]), ("h2c", ["--http2-prior-knowledge"])]

    /// The lines of an echoed request head that name `header`.
    private func lines(_ body: String, _ header: String) -> [String] {
        body.split(separator: "\n").map(String.init).filter { $0.hasPrefix(header + ": ") }
    }

    func testAServiceGetsTheEditedRequestAndTheClientTheEditedAnswer() throws {
        try start()
        for (name, arguments) in protocols {
            let edited = try Curl.run(arguments + clientHeaders + ["\(gateway.http)/service/a"])
            XCTAssertEqual(edited.status, 200, name)
            XCTAssertEqual(lines(edited.body, "x-env"), ["x-env: prod"], "\(name): set replaces the client's value\n\(edited.body)")
            XCTAssertEqual(lines(edited.body, "x-tag"), ["x-tag: client", "x-tag: route"], "\(name): add appends a field")
            XCTAssertEqual(lines(edited.body, "x-debug"), [], "\(name): remove drops the client's field")
            XCTAssertEqual(lines(edited.body, "x-forwarded-for"), [], "\(name): and one Portico added, since edits come after")
            XCTAssertEqual(lines(edited.body, "x-request-id"), ["x-request-id: from-route"], name)
            XCTAssertEqual(lines(edited.body, "x-forwarded-proto"), ["x-forwarded-proto: http"], "\(name): the others stay")
            XCTAssertEqual(edited.header("cache-control"), "no-store", name)
            XCTAssertEqual(edited.header("x-added"), "1", name)
            XCTAssertNil(edited.header("x-upstream"), "\(name): the backend's field is removed")

            let plain = try Curl.run(arguments + clientHeaders + ["\(gateway.http)/other"])
            XCTAssertEqual(lines(plain.body, "x-debug"), ["x-debug: 1"], "\(name): a route without edits forwards as it came")
            XCTAssertEqual(lines(plain.body, "x-env"), ["x-env: dev"], name)
            XCTAssertEqual(plain.header("x-upstream"), "backend", name)
            XCTAssertNil(plain.header("cache-control"), name)
        }
    }

    func testAnHTTPFunctionAndAnExecFunctionGetTheEditsToo() throws {
        try start()
        for (name, arguments) in protocols {
            let edited = try Curl.run(arguments + clientHeaders + ["\(gateway.http)/function/a"])
            XCTAssertEqual(edited.status, 200, "\(name)\n\(gateway.stderr)")
            XCTAssertEqual(lines(edited.body, "x-env"), ["x-env: prod"], "\(name)\n\(edited.body)")
            XCTAssertEqual(lines(edited.body, "x-tag"), ["x-tag: client", "x-tag: route"], name)
            XCTAssertEqual(lines(edited.body, "x-debug"), [], name)
            XCTAssertEqual(lines(edited.body, "x-forwarded-for"), [], name)
            XCTAssertEqual(edited.header("cache-control"), "no-store", name)
            XCTAssertEqual(edited.header("x-added"), "1", name)
            XCTAssertNil(edited.header("server"), "\(name): the worker's Server field is removed")

            let plain = try Curl.run(arguments + clientHeaders + ["\(gateway.http)/plain-function/a"])
            XCTAssertEqual(lines(plain.body, "x-debug"), ["x-debug: 1"], name)
            XCTAssertNotNil(plain.header("server"), "\(name): Python's http.server sends one")

            // A client's `Proxy:` never becomes the process's HTTP_PROXY ("httpoxy").
            let exec = try Curl.run(arguments + clientHeaders + ["-H", "Proxy: http://127.0.0.1:9", "\(gateway.http)/exec/a"])
            XCTAssertEqual(exec.status, 200, name)
            // The environment keeps one value per name: the added field is the later one. The
            // process gets the forwarding headers a service would (since issue 15's layers),
            // and the route's edits after them (this route removes x-forwarded-for).
            XCTAssertEqual(exec.body.trimmingCharacters(in: .newlines),
                           "env=prod tag=route debug=none id=from-route proto=http xff=none proxy=none", name)
            XCTAssertEqual(exec.header("cache-control"), "no-store", name)
        }
    }

    /// A backend's 101 is its answer too; the tunnel after it carries bytes, which no edit touches.
    func testAWebSocketUpgradeAnswerIsEdited() throws {
        try start()
        let socket = try RawSocket(port: gateway.httpPort)
        socket.send("""
            GET /service/ws HTTP/1.1\r
            Host: x\r
            Upgrade: websocket\r
            Connection: Upgrade\r
            Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r
            Sec-WebSocket-Version: 13\r
            \r

            """)
        let handshake = String(decoding: socket.receive { String(decoding: $0, as: UTF8.self).contains("\r\n\r\n") }, as: UTF8.self)
        XCTAssertTrue(handshake.hasPrefix("HTTP/1.1 101"), handshake)
        XCTAssertTrue(handshake.lowercased().contains("\r\ncache-control: no-store\r\n"), handshake)
        XCTAssertTrue(handshake.lowercased().contains("\r\nx-added: 1\r\n"), handshake)

        socket.send(WebSocketFrames.maskedText("hi there"))
        let reply = socket.receive { WebSocketFrames.unmaskedText($0) != nil }
        XCTAssertEqual(WebSocketFrames.unmaskedText(reply), "echo:hi there")
    }

    /// An answer the gateway makes itself (here a 502: nothing listens on the service's port)
    /// is not the backend's: a `cache-control` meant for the backend's pages must not make it
    /// cacheable.
    func testTheGatewaysOwnAnswersAreNotEdited() throws {
        try start()
        for (name, arguments) in protocols {
            let failed = try Curl.run(arguments + ["\(gateway.http)/down/a"])
            XCTAssertEqual(failed.status, 502, name)
            XCTAssertNil(failed.header("cache-control"), name)
        }
    }
}
