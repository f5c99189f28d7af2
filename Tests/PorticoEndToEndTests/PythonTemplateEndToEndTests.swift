import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// `runtime: python` functions: a template process imports the handler once and each worker is
/// a fork of it. Real interpreters, real forks, curl.
final class PythonTemplateEndToEndTests: XCTestCase {
    var gateway: PorticoProcess!
    /// The handler's module name: it is on the template's command line, which forked workers
    /// share, so the test can find every process of its own (and nobody else's).
    let module = "tpl_" + UUID().uuidString.prefix(8).lowercased()

    override func tearDown() {
        if let gateway {
            gateway.stop()
            XCTAssertTrue(eventually { Processes.matching(self.module).isEmpty },
                          "processes left behind: \(Processes.matching(module).map(\.commandLine))")
        }
    }

    /// A WSGI application that says who it is, counts its imports in a file, and streams or
    /// fails on request.
    static let application = """
        import os, sys
        with open(os.environ["IMPORT_LOG"], "a") as log:
            log.write(f"{os.getpid()}\\n")

        def application(environ, start_response):
            path = environ["PATH_INFO"]
            if path == "/fail":
                raise RuntimeError("the handler failed")
            if path == "/stream":
                start_response("200 OK", [("content-type", "text/plain")])
                return (f"part{i}\\n".encode() for i in range(3))
            body = environ["wsgi.input"].read()
            text = (f"{environ['REQUEST_METHOD']} {path}?{environ['QUERY_STRING']} body={body.decode()} "
                    f"revision={os.environ.get('K_REVISION')} port={os.environ.get('PORT')} "
                    f"launcher={'PORTICO_LAUNCHER' in os.environ}\\n").encode()
            start_response("200 OK", [("content-type", "text/plain"), ("content-length", str(len(text))),
                                      ("x-pid", str(os.getpid())), ("x-parent", str(os.getppid()))])
            return [text]
        """

    func writeFunction(_ name: String, in root: URL, manifest: String, source: String = PythonTemplateEndToEndTests.application) throws {
        let folder = root.appendingPathComponent("Functions/\(name)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        try source.write(to: folder.appendingPathComponent("\(module).py"), atomically: true, encoding: .utf8)
        let importLog = root.appendingPathComponent("\(name)-imports.log").path
        try ("runtime: python\nhandler: \(module):application\nenv: { IMPORT_LOG: \"\(importLog)\" }\n" + manifest)
            .write(to: folder.appendingPathComponent("function.yaml"), atomically: true, encoding: .utf8)
    }

    func imports(_ name: String) -> [String] {
        let text = (try? String(contentsOf: gateway.directory.appendingPathComponent("\(name)-imports.log"), encoding: .utf8)) ?? ""
        return text.split(separator: "\n").map(String.init)
    }

    func template(_ name: String) -> [String: Any]? {
        gateway.functionEntry(name)?["template"] as? [String: Any]
    }

    func testWorkersAreForksOfOneTemplateThatImportedTheHandlerOnce() throws {
        gateway = try PorticoProcess(config: "routes: []") { root in
            try self.writeFunction("api", in: root, manifest: "idleTimeout: 1s\n")
        }
        // Deployed: the template runs, and has imported the handler, before any request.
        XCTAssertTrue(eventually { self.template("api")?["state"] as? String == "ready" }, gateway.stderr)
        let templatePID = try XCTUnwrap(template("api")?["pid"] as? Int)
        XCTAssertEqual(imports("api"), ["\(templatePID)"])
        XCTAssertEqual(gateway.readyWorkers("api"), 0, "the template is not a worker")

        let first = try Curl.run(["--data", "hi", "\(gateway.http)/function/api/echo?x=1"])
        XCTAssertEqual(first.status, 200, gateway.stderr)
        XCTAssertEqual(first.header("x-parent"), "\(templatePID)", "the worker is a fork of the template")
        XCTAssertTrue(first.body.hasPrefix("POST /echo?x=1 body=hi revision=api-"), first.body)
        let port = try XCTUnwrap(first.body.split(separator: " ").first { $0.hasPrefix("port=") })
        XCTAssertNotEqual(port, "port=None", "the worker has its own PORT")
        XCTAssertTrue(first.body.hasSuffix("launcher=False\n"), "the launcher's source is not in the worker's environment")
        let firstPID = try XCTUnwrap(first.header("x-pid"))

        let streamed = try Curl.run(["\(gateway.http)/function/api/stream"])
        XCTAssertEqual(streamed.status, 200)
        XCTAssertEqual(streamed.body, "part0\npart1\npart2\n", "a generator's parts, sent chunked")
        let failed = try Curl.run(["\(gateway.http)/function/api/fail"])
        XCTAssertEqual(failed.status, 500, "an exception in the handler is a 500 from the worker")
        XCTAssertTrue(gateway.stderr.contains("RuntimeError: the handler failed"), "with its traceback in the log")

        // Scaled to zero, then a second cold start: another fork, and still a single import.
        XCTAssertTrue(eventually { self.gateway.stderr.contains("worker stopped") })
        XCTAssertTrue(eventually { Processes.workers(self.module).count == 1 }, "only the template is left")
        let second = try Curl.run(["\(gateway.http)/function/api/again"])
        XCTAssertEqual(second.status, 200)
        XCTAssertEqual(second.header("x-parent"), "\(templatePID)")
        XCTAssertNotEqual(second.header("x-pid"), firstPID)
        XCTAssertEqual(imports("api"), ["\(templatePID)"], "workers never import the handler again")
        XCTAssertTrue(Processes.zombies(childrenOf: gateway.process.processIdentifier).isEmpty)
    }

    func testAHandlerThatCannotBeImportedShowsItsTracebackAndHarmsNoOtherFunction() throws {
        gateway = try PorticoProcess(config: "routes: []") { root in
            try self.writeFunction("broken", in: root, manifest: "", source: "import not_a_module_\(self.module)\n")
            try self.writeFunction("fine", in: root, manifest: "")
        }
        XCTAssertTrue(eventually { (self.template("broken")?["failures"] as? Int ?? 0) >= 1 }, gateway.stderr)
        let failure = try XCTUnwrap(template("broken")?["lastFailure"] as? String)
        XCTAssertTrue(failure.contains("ModuleNotFoundError: No module named 'not_a_module_\(module)'"), failure)
        XCTAssertTrue(failure.hasPrefix("Traceback (most recent call last):"), "the whole traceback: \(failure)")

        let broken = try Curl.run(["\(gateway.http)/function/broken/"])
        XCTAssertEqual(broken.status, 502, "no worker can start")
        XCTAssertEqual(try Curl.run(["\(gateway.http)/function/fine/"]).status, 200, gateway.stderr)
        // It keeps trying, with a growing wait: a second failure comes, the gateway is fine.
        XCTAssertTrue(eventually { (self.template("broken")?["failures"] as? Int ?? 0) >= 2 })
        XCTAssertEqual(try Curl.run(["\(gateway.admin)/ready"]).status, 200)
    }

    func testACrashedTemplateIsRestartedAndTakesItsWorkersWithIt() throws {
        gateway = try PorticoProcess(config: "routes: []") { root in
            try self.writeFunction("api", in: root, manifest: "idleTimeout: 60s\n")
        }
        let first = try Curl.run(["\(gateway.http)/function/api/"])
        XCTAssertEqual(first.status, 200, gateway.stderr)
        let templatePID = try XCTUnwrap(first.header("x-parent").flatMap { Int32($0) })
        let workerPID = try XCTUnwrap(first.header("x-pid").flatMap { Int32($0) })

        kill(templatePID, SIGKILL)
        XCTAssertTrue(eventually { kill(workerPID, 0) != 0 }, "its worker goes too: it was the template's")
        XCTAssertTrue(eventually {
            guard let pid = self.template("api")?["pid"] as? Int else { return false }
            return pid != Int(templatePID) && self.template("api")?["state"] as? String == "ready"
        }, "a new template: \(gateway.stderr)")
        let newTemplate = try XCTUnwrap(template("api")?["pid"] as? Int)
        let next = try Curl.run(["\(gateway.http)/function/api/"])
        XCTAssertEqual(next.status, 200)
        XCTAssertEqual(next.header("x-parent"), "\(newTemplate)")
        XCTAssertEqual(imports("api").count, 2, "the new template imported the handler; workers did not")
    }

    func testWithoutIdleTemplateAnIdleFunctionRunsNoProcess() throws {
        gateway = try PorticoProcess(config: "routes: []") { root in
            try self.writeFunction("lazy", in: root, manifest: "idleTemplate: false\nidleTimeout: 500ms\n")
        }
        XCTAssertTrue(Processes.matching(module).isEmpty, "nothing runs before the first request")
        let first = try Curl.run(["\(gateway.http)/function/lazy/"])
        XCTAssertEqual(first.status, 200, gateway.stderr)
        XCTAssertNotNil(first.header("x-parent"))
        XCTAssertTrue(eventually { Processes.matching(self.module).isEmpty }, "the template went with the last worker")
        XCTAssertEqual(template("lazy")?["state"] as? String, "stopped")
        let second = try Curl.run(["\(gateway.http)/function/lazy/"])
        XCTAssertEqual(second.status, 200, "and starts again for the next request")
        XCTAssertEqual(imports("lazy").count, 2)
    }

    func testTemplateFalseRunsTheSameHandlerInAPlainlySpawnedWorker() throws {
        gateway = try PorticoProcess(config: "routes: []") { root in
            try self.writeFunction("plain", in: root, manifest: "template: false\n")
        }
        XCTAssertTrue(Processes.matching(module).isEmpty, "no template")
        XCTAssertNil(template("plain"))
        let answer = try Curl.run(["--data", "x", "\(gateway.http)/function/plain/p"])
        XCTAssertEqual(answer.status, 200, gateway.stderr)
        XCTAssertTrue(answer.body.hasPrefix("POST /p? body=x revision=plain-"), answer.body)
        let parent = try XCTUnwrap(answer.header("x-parent").flatMap { Int32($0) })
        let parentLine = Processes.all().first { $0.pid == parent }?.commandLine ?? ""
        XCTAssertTrue(parentLine.hasPrefix("portico-supervise "), "spawned under its own supervisor: \(parentLine)")
        XCTAssertEqual(imports("plain"), [try XCTUnwrap(answer.header("x-pid"))], "the worker imported the handler itself")
    }

    func testNoTemplateOrWorkerOutlivesAKilledGateway() throws {
        gateway = try PorticoProcess(config: "routes: []") { root in
            try self.writeFunction("api", in: root, manifest: "")
        }
        XCTAssertEqual(try Curl.run(["\(gateway.http)/function/api/"]).status, 200, gateway.stderr)
        XCTAssertEqual(Processes.workers(module).count, 2, "a template and a worker")
        gateway.signal(SIGKILL)
        XCTAssertNotNil(gateway.waitForExit(timeout: 10))
        XCTAssertTrue(eventually { Processes.matching(self.module).isEmpty },
                      "left behind: \(Processes.matching(module).map(\.commandLine))")
    }

    /// `mode: lambda` with the python runtime: a Lambda-style handler, forked from the template,
    /// each worker running the Runtime API loop against Portico.
    static let lambdaHandler = """
        import json, os
        with open(os.environ["IMPORT_LOG"], "a") as log:
            log.write(f"{os.getpid()}\\n")

        def application(event, context):
            if event["rawPath"] == "/fail":
                raise ValueError("the handler failed")
            return {"statusCode": 201, "headers": {"x-pid": str(os.getpid()), "x-parent": str(os.getppid())},
                    "body": json.dumps({"path": event["rawPath"], "method": event["requestContext"]["http"]["method"],
                                        "body": event.get("body"), "request": context.aws_request_id != "",
                                        "runtime": "AWS_LAMBDA_RUNTIME_API" in os.environ})}
        """

    func testALambdaHandlerIsForkedFromTheTemplateAndServedThroughTheRuntimeAPI() throws {
        gateway = try PorticoProcess(config: "routes: []") { root in
            try self.writeFunction("lam", in: root, manifest: "mode: lambda\nidleTimeout: 1s\n", source: Self.lambdaHandler)
        }
        XCTAssertTrue(eventually { self.template("lam")?["state"] as? String == "ready" }, gateway.stderr)
        let templatePID = try XCTUnwrap(template("lam")?["pid"] as? Int)
        let first = try Curl.run(["--data", "hi", "-H", "content-type: text/plain", "\(gateway.http)/function/lam/x"])
        XCTAssertEqual(first.status, 201, "\(first.body)\n\(gateway.stderr)")
        XCTAssertEqual(first.header("x-parent"), "\(templatePID)", "forked from the template")
        let answer = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(first.body.utf8)) as? [String: Any])
        XCTAssertEqual(answer["path"] as? String, "/x")
        XCTAssertEqual(answer["method"] as? String, "POST")
        XCTAssertEqual(answer["body"] as? String, "hi")
        XCTAssertEqual(answer["request"] as? Bool, true)
        XCTAssertEqual(answer["runtime"] as? Bool, true)
        XCTAssertEqual(try Curl.run(["\(gateway.http)/function/lam/fail"]).status, 502, "an error call is API Gateway's 502")

        XCTAssertTrue(eventually { self.gateway.stderr.contains("worker stopped") })
        let second = try Curl.run(["\(gateway.http)/function/lam/y"])
        XCTAssertEqual(second.status, 201)
        XCTAssertNotEqual(second.header("x-pid"), first.header("x-pid"))
        XCTAssertEqual(imports("lam"), ["\(templatePID)"], "imported once, by the template")
    }
}
