import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// `mode: lambda` with real Lambda runtimes: AWS's own runtime interface client for Python
/// (`awslambdaric`, from PyPI) running a handler that knows nothing of Portico, and a bash
/// `bootstrap` written as in AWS's custom-runtime tutorial, both talking to the Runtime API
/// Portico serves each worker.
final class LambdaEndToEndTests: XCTestCase {
    var gateway: PorticoProcess!
    /// On every worker's command line, so the test can find its processes (and nobody else's).
    let marker = "portico-lambda-\(UUID().uuidString.prefix(8))"

    override func tearDown() {
        if let gateway {
            gateway.stop()
            XCTAssertTrue(eventually { Processes.matching(self.marker).isEmpty },
                          "workers left behind: \(Processes.matching(marker).map(\.commandLine))")
        }
    }

    /// An unmodified Lambda handler: `handler(event, context)`, as it would be deployed to AWS.
    static let pythonHandler = #"""
    import base64, json, os, time

    def handler(event, context):
        path = event["rawPath"]
        if path == "/shape":
            return {
                "statusCode": 201,
                "headers": {"content-type": "application/json", "x-handler": "python"},
                "cookies": ["first=1; Path=/", "second=2"],
                "body": json.dumps({"event": event, "function": context.function_name,
                                    "requestId": context.aws_request_id,
                                    "remaining": context.get_remaining_time_in_millis(),
                                    "arn": context.invoked_function_arn}),
            }
        if path == "/binary":
            return {"statusCode": 200, "headers": {"content-type": "application/octet-stream"},
                    "body": base64.b64encode(bytes(range(256))).decode(), "isBase64Encoded": True}
        if path == "/big":
            n = int(event["queryStringParameters"]["n"])
            return {"statusCode": 200, "body": "x" * n,
                    "headers": {"content-type": "text/plain", "x-received": str(len(event.get("body") or ""))}}
        if path == "/plain":
            return "Hello from Lambda!"
        if path == "/object":
            return {"message": "no statusCode here"}
        if path == "/raise":
            raise ValueError("the handler raised on purpose")
        if path == "/sleep":
            time.sleep(float(event["queryStringParameters"]["s"]))
        return {"statusCode": 200, "body": "pid %d" % os.getpid()}
    """#

    /// The bootstrap of AWS's custom-runtime tutorial (bash and curl), with its `function.sh`
    /// handler changed only to echo the event back.
    static let tutorialBootstrap = #"""
    #!/bin/bash
    set -euo pipefail

    # Initialization - load function handler
    source $LAMBDA_TASK_ROOT/"$(echo $_HANDLER | cut -d. -f1).sh"

    # Processing
    while true
    do
      HEADERS="$(mktemp)"
      # Get an event. The HTTP request will block until one is received
      EVENT_DATA=$(curl -sS -LD "$HEADERS" "http://${AWS_LAMBDA_RUNTIME_API}/2018-06-01/runtime/invocation/next")

      # Extract request ID by scraping response headers received above
      REQUEST_ID=$(grep -Fi Lambda-Runtime-Aws-Request-Id "$HEADERS" | tr -d '[:space:]' | cut -d: -f2)

      # Run the handler function from the script
      RESPONSE=$($(echo "$_HANDLER" | cut -d. -f2) "$EVENT_DATA")

      # Send the response
      curl -sS "http://${AWS_LAMBDA_RUNTIME_API}/2018-06-01/runtime/invocation/$REQUEST_ID/response"  -d "$RESPONSE"
    done
    """#

    static let tutorialFunction = #"""
    function handler () {
      EVENT_DATA=$1
      echo "$EVENT_DATA"
    }
    """#

    func writeFunction(_ name: String, in root: URL, manifest: String, files: [String: String]) throws {
        let folder = root.appendingPathComponent("Functions/\(name)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        for (file, text) in files {
            try text.write(to: folder.appendingPathComponent(file), atomically: true, encoding: .utf8)
            if file == "bootstrap" || file.hasSuffix(".sh") { chmod(folder.appendingPathComponent(file).path, 0o755) }
        }
        try manifest.write(to: folder.appendingPathComponent("function.yaml"), atomically: true, encoding: .utf8)
    }

    /// The Python function: `python3 -m awslambdaric main.handler`, the way AWS's container
    /// images start it.
    func writePythonFunction(_ name: String, in root: URL, extra: String = "", handler: String = LambdaEndToEndTests.pythonHandler)
        throws {
        try writeFunction(name, in: root, manifest: """
            mode: lambda
            command: ["python3", "-m", "awslambdaric", "main.handler", "\(marker)"]
            \(extra)
            """, files: ["main.py": handler])
    }

    func functionsJSON() -> String {
        (try? Curl.run(["\(gateway.admin)/functions"]).body) ?? ""
    }

    func testAwsLambdaRICRunsAnUnmodifiedPythonHandler() throws {
        gateway = try PorticoProcess(config: "routes: []") { root in
            try self.writePythonFunction("py", in: root)
        }
        // The event: method, path, query, headers (repeated ones joined), cookies.
        let shaped = try Curl.run([
            "-H", "X-Multi: one", "-H", "X-Multi: two", "-H", "Cookie: c1=1; c2=2", "-H", "content-type: text/plain",
            "--data-binary", "text body", "\(gateway.http)/function/py/shape?a=1&a=2&b=x%20y",
        ])
        XCTAssertEqual(shaped.status, 201, shaped.body + gateway.stderr)
        XCTAssertEqual(shaped.header("x-handler"), "python")
        XCTAssertEqual(shaped.header("content-type"), "application/json")
        XCTAssertEqual(shaped.headers.filter { $0.0.lowercased() == "set-cookie" }.map(\.1), ["first=1; Path=/", "second=2"])
        let answer = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(shaped.body.utf8)) as? [String: Any])
        XCTAssertEqual(answer["function"] as? String, "py")
        XCTAssertEqual(answer["arn"] as? String, "arn:aws:lambda:us-east-1:000000000000:function:py")
        let remaining = try XCTUnwrap(answer["remaining"] as? Int)
        XCTAssertTrue(remaining > 50_000 && remaining <= 60_000, "the deadline is requestTimeout (60 s) away: \(remaining)")
        let event = try XCTUnwrap(answer["event"] as? [String: Any])
        XCTAssertEqual(event["version"] as? String, "2.0")
        XCTAssertEqual(event["rawPath"] as? String, "/shape", "the route's rewrite applies")
        XCTAssertEqual(event["rawQueryString"] as? String, "a=1&a=2&b=x%20y")
        XCTAssertEqual(event["queryStringParameters"] as? [String: String], ["a": "1,2", "b": "x y"])
        XCTAssertEqual(event["cookies"] as? [String], ["c1=1", "c2=2"])
        let headers = try XCTUnwrap(event["headers"] as? [String: String])
        XCTAssertEqual(headers["x-multi"], "one,two")
        XCTAssertEqual(event["body"] as? String, "text body")
        XCTAssertEqual(event["isBase64Encoded"] as? Bool, false)
        let context = try XCTUnwrap(event["requestContext"] as? [String: Any])
        let http = try XCTUnwrap(context["http"] as? [String: String])
        XCTAssertEqual(http["method"], "POST")
        XCTAssertEqual(http["path"], "/shape")
        XCTAssertEqual(http["sourceIp"], "127.0.0.1")
        XCTAssertFalse((context["requestId"] as? String ?? "").isEmpty)
        XCTAssertEqual((answer["requestId"] as? String)?.count, 36, "the invocation's id is a UUID")

        // HTTP/2 clients too: the protocol is in the event.
        let overH2 = try Curl.run(["--http2-prior-knowledge", "\(gateway.http)/function/py/shape"])
        XCTAssertEqual(overH2.status, 201)
        let h2Event = ((try? JSONSerialization.jsonObject(with: Data(overH2.body.utf8))) as? [String: Any])?["event"] as? [String: Any]
        let h2Context = h2Event?["requestContext"] as? [String: Any]
        XCTAssertEqual((h2Context?["http"] as? [String: String])?["protocol"], "HTTP/2.0")

        // A binary request body reaches the handler in base64; a binary answer comes back whole.
        let binaryFile = gateway.directory.appendingPathComponent("binary.bin")
        try Data([0, 1, 2, 0xFF, 0xFE]).write(to: binaryFile)
        let echoedBinary = try Curl.run(["-H", "content-type: application/octet-stream", "--data-binary", "@\(binaryFile.path)",
                                         "\(gateway.http)/function/py/shape"])
        let binaryEvent = try XCTUnwrap((JSONSerialization.jsonObject(with: Data(echoedBinary.body.utf8)) as? [String: Any])?["event"]
            as? [String: Any])
        XCTAssertEqual(binaryEvent["isBase64Encoded"] as? Bool, true)
        XCTAssertEqual(binaryEvent["body"] as? String, "AAEC//4=")
        let downloaded = gateway.directory.appendingPathComponent("download.bin")
        let binary = try Curl.run(["--output", downloaded.path, "\(gateway.http)/function/py/binary"])
        XCTAssertEqual(binary.status, 200)
        XCTAssertEqual(binary.header("content-type"), "application/octet-stream")
        XCTAssertEqual(try Data(contentsOf: downloaded), Data((0...255).map { UInt8($0) }))

        // Large bodies both ways: 1 MiB in, 3 MB out (Lambda's limit is 6 MB).
        let bigFile = try bodyFile(1 << 20)
        let big = try Curl.run(["-H", "content-type: text/plain", "--data-binary", "@\(bigFile)",
                                "\(gateway.http)/function/py/big?n=3000000"])
        XCTAssertEqual(big.status, 200, gateway.stderr)
        XCTAssertEqual(big.header("x-received"), "\(1 << 20)")
        XCTAssertEqual(big.body.utf8.count, 3_000_000)

        // A plain return value: 200, application/json, the value as the body (a string is its text).
        let plain = try Curl.run(["\(gateway.http)/function/py/plain"])
        XCTAssertEqual(plain.status, 200)
        XCTAssertEqual(plain.header("content-type"), "application/json")
        XCTAssertEqual(plain.body, "Hello from Lambda!")
        let object = try Curl.run(["\(gateway.http)/function/py/object"])
        XCTAssertEqual(object.status, 200)
        XCTAssertEqual(try JSONSerialization.jsonObject(with: Data(object.body.utf8)) as? [String: String],
                       ["message": "no statusCode here"])

        // A handler that raises: API Gateway's 502 body, and the worker goes on serving.
        let pid = try Curl.run(["\(gateway.http)/function/py/"]).body
        let raised = try Curl.run(["\(gateway.http)/function/py/raise"])
        XCTAssertEqual(raised.status, 502)
        XCTAssertEqual(raised.body, #"{"message":"Internal Server Error"}"#)
        XCTAssertTrue(gateway.stderr.contains("the handler raised on purpose"), "the error is logged")
        let after = try Curl.run(["\(gateway.http)/function/py/"])
        XCTAssertEqual(after.status, 200)
        XCTAssertEqual(after.body, pid, "the same worker serves on")
        XCTAssertTrue(functionsJSON().replacingOccurrences(of: " ", with: "").contains("\"mode\":\"lambda\""), functionsJSON())
    }

    func testTheTutorialBashBootstrapEchoesTheEvent() throws {
        gateway = try PorticoProcess(config: "routes: []") { root in
            try self.writeFunction("tutorial", in: root, manifest: """
                mode: lambda
                handler: function.handler
                env: { MARKER: \(self.marker) }
                command: ["./bootstrap", "\(self.marker)"]
                """, files: ["bootstrap": Self.tutorialBootstrap, "function.sh": Self.tutorialFunction])
        }
        for index in 1...3 {
            let echoed = try Curl.run(["\(gateway.http)/function/tutorial/echo/\(index)?n=\(index)"])
            XCTAssertEqual(echoed.status, 200, echoed.body + gateway.stderr)
            XCTAssertEqual(echoed.header("content-type"), "application/json")
            let event = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(echoed.body.utf8)) as? [String: Any], echoed.body)
            XCTAssertEqual(event["rawPath"] as? String, "/echo/\(index)")
            XCTAssertEqual(event["queryStringParameters"] as? [String: String], ["n": "\(index)"])
        }
    }

    func testAHandlerPastItsTimeoutIs504AndItsWorkerIsReplaced() throws {
        gateway = try PorticoProcess(config: "routes: []") { root in
            try self.writePythonFunction("slow", in: root, extra: "requestTimeout: 2s\nmaxWorkers: 1\n")
        }
        let first = try Curl.run(["\(gateway.http)/function/slow/"])
        XCTAssertEqual(first.status, 200, gateway.stderr)
        let started = Date()
        let late = try Curl.run(["\(gateway.http)/function/slow/sleep?s=30"])
        XCTAssertEqual(late.status, 504)
        XCTAssertLessThan(Date().timeIntervalSince(started), 10, "answered at the deadline, not when the handler ends")
        XCTAssertTrue(eventually { !Processes.workers(self.marker).map(\.pid).contains(Int32(first.body.dropFirst(4)) ?? -1) },
                      "the worker that timed out is killed")
        let next = try Curl.run(["\(gateway.http)/function/slow/"])
        XCTAssertEqual(next.status, 200, gateway.stderr)
        XCTAssertNotEqual(next.body, first.body, "a fresh worker serves the next request")
        XCTAssertTrue(functionsJSON().contains("requestTimeout"), functionsJSON())
    }

    func testOneInvocationAtATimePerWorker() throws {
        gateway = try PorticoProcess(config: "routes: []") { root in
            try self.writePythonFunction("one", in: root, extra: "maxWorkers: 2\n")
        }
        _ = try Curl.run(["\(gateway.http)/function/one/"])  // one worker warm
        let statuses = Statuses()
        let started = Date()
        for _ in 0..<4 { statuses.start(curl: ["--max-time", "20", "\(gateway.http)/function/one/sleep?s=1"]) }
        statuses.wait()
        XCTAssertEqual(statuses.all, [200, 200, 200, 200])
        // Two workers, one invocation each at a time: four 1 s invocations take two rounds.
        XCTAssertGreaterThanOrEqual(Date().timeIntervalSince(started), 2)
        XCTAssertLessThanOrEqual(Processes.workers(marker).count, 2)
    }

    func testARedeployAndAChangeOfModeServeTheNewRevision() throws {
        let version = { (text: String) in "def handler(event, context):\n    return {\"statusCode\": 200, \"body\": \"\(text)\"}\n" }
        gateway = try PorticoProcess(config: "routes: []") { root in
            try self.writePythonFunction("deployed", in: root, handler: version("v1"))
        }
        XCTAssertEqual(try Curl.run(["\(gateway.http)/function/deployed/"]).body, "v1")
        try version("v2").write(to: gateway.directory.appendingPathComponent("Functions/deployed/main.py"), atomically: true,
                                encoding: .utf8)
        XCTAssertTrue(eventually { (try? Curl.run(["\(self.gateway.http)/function/deployed/"]).body) == "v2" }, gateway.stderr)
        // From lambda to http mode and back: each revision is served the way its manifest says.
        try writeFunction("deployed", in: gateway.directory, manifest: """
            command: ["python3", "worker.py", "\(marker)"]
            """, files: ["worker.py": PythonWorker.script(before: "", body: #""http mode\n""#, headers: [])])
        XCTAssertTrue(eventually { (try? Curl.run(["\(self.gateway.http)/function/deployed/"]).body) == "http mode\n" }, gateway.stderr)
        try writePythonFunction("deployed", in: gateway.directory, handler: version("v3"))
        XCTAssertTrue(eventually { (try? Curl.run(["\(self.gateway.http)/function/deployed/"]).body) == "v3" }, gateway.stderr)
    }

    /// A request waiting on a lambda revision when it is replaced by an http-mode one cannot be
    /// handed over (it waits for an invocation, not a connection): it gets 503, try again,
    /// rather than a worker it cannot use; the one running finishes.
    func testARequestWaitingAcrossAChangeOfModeIsToldToRetry() throws {
        gateway = try PorticoProcess(config: "routes: []") { root in
            try self.writePythonFunction("switch", in: root, extra: "maxWorkers: 1\n")
        }
        XCTAssertEqual(try Curl.run(["\(gateway.http)/function/switch/"]).status, 200)
        let running = Statuses()
        running.start(curl: ["--max-time", "30", "\(gateway.http)/function/switch/sleep?s=8"])
        XCTAssertTrue(eventually { self.functionsJSON().replacingOccurrences(of: " ", with: "").contains("\"inFlight\":1") },
                      "\(functionsJSON())\n\(gateway.stderr)")
        let waiting = Statuses()
        waiting.start(curl: ["--max-time", "30", "\(gateway.http)/function/switch/"])
        XCTAssertTrue(eventually { self.functionsJSON().replacingOccurrences(of: " ", with: "").contains("\"queueLength\":1") },
                      "\(functionsJSON())\n\(gateway.stderr)")
        try writeFunction("switch", in: gateway.directory, manifest: """
            command: ["python3", "worker.py", "\(marker)"]
            """, files: ["worker.py": PythonWorker.script(before: "", body: #""http mode\n""#, headers: [])])
        waiting.wait()
        XCTAssertEqual(waiting.all, [503], gateway.stderr)
        running.wait()
        XCTAssertEqual(running.all, [200], "the invocation in flight finishes on the old revision\n\(gateway.stderr)")
        XCTAssertEqual(try Curl.run(["\(gateway.http)/function/switch/"]).body, "http mode\n")
    }

    func testAnInitErrorIs502AndShowsInFunctions() throws {
        gateway = try PorticoProcess(config: "routes: []") { root in
            try self.writePythonFunction("broken", in: root, handler: "raise RuntimeError('cannot load the model')\n")
            try self.writeFunction("exits", in: root, manifest: """
                mode: lambda
                command: ["./bootstrap", "\(self.marker)"]
                """, files: ["bootstrap": "#!/bin/sh\necho 'no runtime here' >&2\nexit 3\n"])
        }
        let broken = try Curl.run(["--max-time", "20", "\(gateway.http)/function/broken/"])
        XCTAssertEqual(broken.status, 502, gateway.stderr)
        XCTAssertTrue(functionsJSON().contains("init error: RuntimeError: cannot load the model"), functionsJSON())
        let exits = try Curl.run(["--max-time", "20", "\(gateway.http)/function/exits/"])
        XCTAssertEqual(exits.status, 502)
        XCTAssertTrue(functionsJSON().contains("exited before it was ready"), functionsJSON())
        // The gateway is fine.
        XCTAssertEqual(try Curl.run(["\(gateway.admin)/functions"]).status, 200)
    }
}
