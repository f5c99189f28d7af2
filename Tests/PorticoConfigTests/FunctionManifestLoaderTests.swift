import Foundation
import PorticoConfig
import XCTest

/// What a `function.yaml` turns into, and what a user sees when it is wrong.
final class FunctionManifestLoaderTests: XCTestCase {
    private let file = "functions/hello/function.yaml"

    private func parse(_ yaml: String, name: String = "hello") throws -> FunctionManifest {
        try FunctionManifestLoader.parse(yaml: yaml, file: file, name: name, directory: "functions/\(name)")
    }

    /// The printed error for `yaml`, failing the test if the manifest loads.
    private func errorText(_ yaml: String, name: String = "hello", file: StaticString = #filePath, line: UInt = #line) -> String {
        rejectionText(of: {
            _ = try FunctionManifestLoader.parse(yaml: yaml, file: "functions/\(name)/function.yaml", name: name,
                                                 directory: "functions/\(name)")
        }, file: file, line: line)
    }

    // MARK: Valid manifests

    /// Every example function folder loads, and `warm` shows the keys it is there to show.
    func testEveryExampleFunctionLoads() throws {
        let examples = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("config/examples/functions")
        let names = try FileManager.default.contentsOfDirectory(atPath: examples.path).filter { !$0.hasPrefix(".") }
        XCTAssertTrue(names.contains("warm"), "\(names)")
        for name in names {
            XCTAssertNoThrow(try FunctionManifestLoader.load(directory: examples.appendingPathComponent(name).path, name: name), name)
        }
        let warm = try FunctionManifestLoader.load(directory: examples.appendingPathComponent("warm").path, name: "warm")
        XCTAssertEqual(warm.minWorkers, 1)
        XCTAssertEqual(warm.startupTimeout, .seconds(60))
        XCTAssertEqual(warm.queueBodyLimit, 8 << 20)
    }

    func testExampleParsesIntoExpectedValues() throws {
        let manifest = try parse("""
            command: ["python3", "main.py"]
            build: ["cc", "-O2", "-o", "worker", "main.c"]
            buildTimeout: 90s
            mode: http
            routes:
              - { prefix: /hello/, rewrite: / }
              - { host: hello.example.com }
              - { path: /hi, methods: [get], headers: { X-A: "1" } }
            env: { GREETING: hi, RETRIES: 3, DEBUG: true }
            concurrency: 4
            minWorkers: 1
            maxWorkers: 6
            idleTimeout: 45s
            startupTimeout: 5s
            requestTimeout: 2m
            queueLimit: 50
            queueBodyLimit: 2MiB
            gracePeriod: 3s
            limits: { memory: 256MiB, openFiles: 1024 }
            readiness: { path: /healthz }
            """)

        XCTAssertEqual(manifest.name, "hello")
        XCTAssertEqual(manifest.directory, "functions/hello")
        XCTAssertEqual(manifest.command, ["python3", "main.py"])
        XCTAssertEqual(manifest.build, ["cc", "-O2", "-o", "worker", "main.c"])
        XCTAssertEqual(manifest.buildTimeout, .seconds(90))
        XCTAssertEqual(manifest.mode, .http)
        XCTAssertEqual(manifest.routes, [
            FunctionRoute(match: RouteMatch(path: .prefix("/hello/")), rewrite: RewriteConfig(prefix: "/")),
            FunctionRoute(match: RouteMatch(host: .exact("hello.example.com"))),
            FunctionRoute(match: RouteMatch(path: .exact("/hi"), headers: [HeaderMatch(name: "x-a", kind: .exact("1"))],
                                            methods: ["GET"])),
        ])
        // File order, and scalars YAML would type as numbers or booleans kept as written.
        XCTAssertEqual(manifest.env, [
            EnvironmentVariable(name: "GREETING", value: "hi"),
            EnvironmentVariable(name: "RETRIES", value: "3"),
            EnvironmentVariable(name: "DEBUG", value: "true"),
        ])
        XCTAssertEqual(manifest.concurrency, 4)
        XCTAssertEqual(manifest.minWorkers, 1)
        XCTAssertEqual(manifest.maxWorkers, 6)
        XCTAssertEqual(manifest.idleTimeout, .seconds(45))
        XCTAssertEqual(manifest.startupTimeout, .seconds(5))
        XCTAssertEqual(manifest.requestTimeout, .seconds(120))
        XCTAssertEqual(manifest.queueLimit, 50)
        XCTAssertEqual(manifest.queueBodyLimit, 2 << 20)
        XCTAssertEqual(manifest.gracePeriod, .seconds(3))
        XCTAssertEqual(manifest.limits, FunctionLimits(memory: 256 * 1024 * 1024, openFiles: 1024))
        XCTAssertEqual(manifest.readinessPath, "/healthz")
    }

    func testOnlyCommandGivesTheDocumentedDefaults() throws {
        let manifest = try parse("command: [./worker]\n")

        XCTAssertEqual(manifest.command, ["./worker"])
        XCTAssertNil(manifest.build)
        XCTAssertEqual(manifest.mode, .http)
        XCTAssertEqual(manifest.routes, [
            FunctionRoute(match: RouteMatch(path: .prefix("/function/hello/")), rewrite: RewriteConfig(prefix: "/")),
        ])
        XCTAssertEqual(manifest.env, [])
        XCTAssertEqual(manifest.concurrency, 4, "a default that scales out under concurrent load")
        XCTAssertEqual(manifest.buildTimeout, .seconds(600))
        XCTAssertEqual(manifest.minWorkers, 0)
        XCTAssertEqual(manifest.maxWorkers, 8)
        XCTAssertEqual(manifest.idleTimeout, .seconds(30))
        XCTAssertEqual(manifest.startupTimeout, .seconds(10))
        XCTAssertEqual(manifest.requestTimeout, .seconds(60))
        XCTAssertEqual(manifest.queueLimit, 100)
        XCTAssertEqual(manifest.queueBodyLimit, 16 << 20)
        XCTAssertEqual(manifest.gracePeriod, .seconds(5))
        XCTAssertEqual(manifest.limits, FunctionLimits(memory: nil, openFiles: nil))
        XCTAssertNil(manifest.readinessPath)
    }

    func testExecModeAndAnEmptyRouteList() throws {
        let manifest = try parse("""
            command: [./handler, --json]
            mode: exec
            maxWorkers: 2
            requestTimeout: 5s
            routes: []
            """)
        XCTAssertEqual(manifest.mode, .exec)
        XCTAssertEqual(manifest.maxWorkers, 2)
        XCTAssertEqual(manifest.requestTimeout, .seconds(5))
        // No routes of its own: only gateway.yaml routes that name the function reach it.
        XCTAssertEqual(manifest.routes, [])
    }

    func testLambdaModeRunsTheBootstrapOneInvocationAtATime() throws {
        let manifest = try parse("""
            mode: lambda
            handler: function.handler
            maxWorkers: 3
            """)
        XCTAssertEqual(manifest.mode, .lambda)
        XCTAssertEqual(manifest.command, ["./bootstrap"], "a custom runtime's entry point, as in Lambda")
        XCTAssertEqual(manifest.handler, "function.handler")
        XCTAssertEqual(manifest.workerConcurrency, 1)
        XCTAssertEqual(try parse("command: [python3, -m, awslambdaric, main.handler]\nmode: lambda\n").command,
                       ["python3", "-m", "awslambdaric", "main.handler"])
        // http mode keeps its own concurrency.
        XCTAssertEqual(try parse("command: [./w]\nconcurrency: 9\n").workerConcurrency, 9)
    }

    func testLambdaModeRejectsWhatALambdaWorkerCannotDo() {
        XCTAssertEqual(errorText("""
            mode: lambda
            concurrency: 4
            readiness: { path: /healthz }
            protocol: h2c
            env: { AWS_LAMBDA_RUNTIME_API: "127.0.0.1:1" }
            """), """
            functions/hello/function.yaml:2:1: concurrency: not for mode: lambda; a Lambda worker takes one invocation at a time through the Runtime API
            functions/hello/function.yaml:3:1: readiness: not for mode: lambda; a Lambda worker takes one invocation at a time through the Runtime API
            functions/hello/function.yaml:4:1: protocol: not for mode: lambda; a Lambda worker takes one invocation at a time through the Runtime API
            functions/hello/function.yaml:5:8: env.AWS_LAMBDA_RUNTIME_API: 'AWS_LAMBDA_RUNTIME_API' is reserved: Portico sets it for lambda-mode workers, to the address of their Runtime API
            """)
        XCTAssertEqual(errorText("command: [./w]\nhandler: main.handler\n"), """
            functions/hello/function.yaml:2:1: handler: only with 'runtime: python' (the handler Portico runs) or mode: lambda (the runtime's _HANDLER)
            """)
    }

    func testLoadNamesTheFunctionAfterItsFolder() throws {
        let root = try TemporaryFolder()
        try root.write("hello-world/function.yaml", "command: [./worker]\n")

        let manifest = try FunctionManifestLoader.load(directory: root.path + "/hello-world/")

        XCTAssertEqual(manifest.name, "hello-world")
        XCTAssertEqual(manifest.routes.first?.match.path, .prefix("/function/hello-world/"))
    }

    func testLoadOfAFolderWithoutManifestIsADiagnosticAtLineOne() throws {
        let root = try TemporaryFolder()
        XCTAssertThrowsError(try FunctionManifestLoader.load(directory: root.path + "/hello")) { error in
            XCTAssertEqual("\(error)", "\(root.path)/hello/function.yaml:1:1: (file): no such file")
        }
    }

    func testFunctionNameRule() {
        XCTAssertTrue(FunctionManifest.isValidName("a"))
        XCTAssertTrue(FunctionManifest.isValidName("hello-world-2"))
        XCTAssertTrue(FunctionManifest.isValidName(String(repeating: "a", count: 63)))
        XCTAssertFalse(FunctionManifest.isValidName(String(repeating: "a", count: 64)))
        XCTAssertFalse(FunctionManifest.isValidName(""))
        XCTAssertFalse(FunctionManifest.isValidName("Hello"))
        XCTAssertFalse(FunctionManifest.isValidName("hello_world"))
        XCTAssertFalse(FunctionManifest.isValidName("-hello"))
        XCTAssertFalse(FunctionManifest.isValidName("hello-"))
        XCTAssertFalse(FunctionManifest.isValidName("héllo"))
    }

    // MARK: Errors

    func testUnknownKeySuggestsTheClosestOne() {
        XCTAssertEqual(errorText("""
            command: [./worker]
            maxWorker: 4
            """),
            "functions/hello/function.yaml:2:1: maxWorker: unknown key 'maxWorker' (did you mean 'maxWorkers'?)")
    }

    func testCommandAsAStringSaysToUseAList() {
        XCTAssertEqual(errorText("command: python3 main.py\n"),
                       "functions/hello/function.yaml:1:10: command: expected a list such as [\"python3\", \"main.py\"], "
                           + "got 'python3 main.py'; use a list: commands run without a shell, so a string is not split into words")
    }

    func testCommandIsRequiredAndNotEmpty() {
        XCTAssertEqual(errorText("mode: http\n"),
                       "functions/hello/function.yaml:1:1: command: missing required key 'command', "
                           + "the program and its arguments, such as [\"python3\", \"main.py\"] (or a 'runtime: python' with a 'handler')")
        XCTAssertEqual(errorText("command: []\nbuild: [\"\", x]\n"), """
            functions/hello/function.yaml:1:10: command: expected the program and its arguments, got an empty list
            functions/hello/function.yaml:2:9: build[0]: expected a program name, got ''
            """)
    }

    func testEnvironmentNamesAreCheckedAndReservedOnesRefused() {
        XCTAssertEqual(errorText("""
            command: [./worker]
            env:
              GREETING: hi
              PORT: 9000
              K_REVISION: abc
              1ST: x
              NESTED: { a: b }
            """), """
            functions/hello/function.yaml:4:3: env.PORT: 'PORT' is reserved: Portico sets PORT, K_SERVICE, K_REVISION, \
            K_CONFIGURATION for every worker
            functions/hello/function.yaml:5:3: env.K_REVISION: 'K_REVISION' is reserved: Portico sets PORT, K_SERVICE, \
            K_REVISION, K_CONFIGURATION for every worker
            functions/hello/function.yaml:6:3: env.1ST: '1ST' is not a valid environment variable name; \
            use letters, digits and '_', not starting with a digit
            functions/hello/function.yaml:7:11: env.NESTED: expected a value (write "" for an empty one), got a mapping
            """)
    }

    func testMaxWorkersBelowMinWorkers() {
        XCTAssertEqual(errorText("""
            command: [./worker]
            minWorkers: 4
            maxWorkers: 2
            """),
            "functions/hello/function.yaml:3:13: maxWorkers: must be at least minWorkers (4), got 2")
        // Without an explicit maxWorkers the default is what minWorkers exceeds, so minWorkers is the key to fix.
        XCTAssertEqual(errorText("""
            command: [./worker]
            minWorkers: 10
            """),
            "functions/hello/function.yaml:2:13: minWorkers: must not be more than maxWorkers (default 8), got 10")
    }

    func testQueueBodyLimitIsASizeOfAtLeastOneKiB() throws {
        XCTAssertEqual(errorText("""
            command: [./worker]
            queueBodyLimit: 100
            """),
            "functions/hello/function.yaml:2:17: queueBodyLimit: must be at least 1KiB, got '100'")
        XCTAssertEqual(errorText("""
            command: [./worker]
            queueBodyLimit: lots
            """),
            "functions/hello/function.yaml:2:17: queueBodyLimit: expected a size like 512KiB, 10MiB, 1GB or a number of bytes, got 'lots'")
        XCTAssertTrue(errorText("""
            command: [./worker]
            queueBodyLimt: 1MiB
            """).contains("function.yaml:2:1: queueBodyLimt: unknown key 'queueBodyLimt' (did you mean 'queueBodyLimit'?)"))
        // Exec functions queue too (for a process slot), holding whole bodies: the key applies there.
        XCTAssertEqual(try parse("command: [./handler]\nmode: exec\nqueueBodyLimit: 64KiB\n").queueBodyLimit, 64 << 10)
    }

    func testWorkerSettingsAreOnlyForHttpMode() {
        XCTAssertEqual(errorText("""
            command: [./handler]
            mode: exec
            concurrency: 2
            minWorkers: 1
            idleTimeout: 10s
            readiness: { path: /healthz }
            maxWorkers: 4
            outlierDetection: { consecutive5xx: 3 }
            """), """
            functions/hello/function.yaml:3:1: concurrency: only for mode: http; an exec function starts one process per request
            functions/hello/function.yaml:4:1: minWorkers: only for mode: http; an exec function starts one process per request
            functions/hello/function.yaml:5:1: idleTimeout: only for mode: http; an exec function starts one process per request
            functions/hello/function.yaml:6:1: readiness: only for mode: http; an exec function starts one process per request
            functions/hello/function.yaml:8:1: outlierDetection: only for mode: http; an exec function starts one process per request
            """)
    }

    func testOutlierDetectionOnAFunction() throws {
        let manifest = try parse("""
            command: [./handler]
            outlierDetection: { consecutive5xx: 0, consecutiveGatewayErrors: 2, baseEjectionTime: 5s }
            """)
        XCTAssertEqual(manifest.outlierDetection, OutlierDetectionConfig(
            consecutive5xx: nil, consecutiveGatewayErrors: 2, baseEjectionTime: .seconds(5)))
        XCTAssertTrue(errorText("""
            command: [./handler]
            outlierDetection: { consecutive5xx: many }
            """).contains("functions/hello/function.yaml:2:37: outlierDetection.consecutive5xx: expected"))
    }

    func testRouteRules() {
        XCTAssertEqual(errorText("""
            command: [./worker]
            routes:
              - { path: /hi, rewrite: / }
              - { prefix: hello, rewrite: /x }
              - { prefx: /a/ }
              - { prefix: /b/, rewrite: { prefix: / } }
            """), """
            functions/hello/function.yaml:3:18: routes[0].rewrite: rewrite replaces the matched prefix, \
            so it needs a 'prefix' in the same route
            functions/hello/function.yaml:4:15: routes[1].prefix: must start with '/', got 'hello'
            functions/hello/function.yaml:5:7: routes[2].prefx: unknown key 'prefx' (did you mean 'prefix'?)
            functions/hello/function.yaml:6:29: routes[3].rewrite: expected a path starting with '/', got a mapping
            """)
    }

    func testRangesAndTypes() {
        XCTAssertEqual(errorText("""
            command: [./worker]
            limits: { memory: 1MiB, openFiles: 0 }
            readiness: { path: healthz }
            requestTimeout: 0s
            queueLimit: -1
            mode: batch
            """), """
            functions/hello/function.yaml:2:19: limits.memory: must be at least 16MiB, got '1MiB'
            functions/hello/function.yaml:2:36: limits.openFiles: must be at least 1, got 0
            functions/hello/function.yaml:3:20: readiness.path: must start with '/', got 'healthz'
            functions/hello/function.yaml:4:17: requestTimeout: must be longer than 0s
            functions/hello/function.yaml:5:13: queueLimit: must be 0 or more, got -1
            functions/hello/function.yaml:6:7: mode: expected one of http, exec, lambda, got 'batch'
            """)
    }

    func testBadFolderNameIsReportedAtTheTopWithTheOtherErrors() {
        XCTAssertEqual(errorText("command: [./worker]\nconcurency: 2\n", name: "Hello_World"), """
            functions/Hello_World/function.yaml:1:1: (name): 'Hello_World' is not a valid function name; \
            use lower-case letters, digits and '-', starting and ending with a letter or digit \
            (a function is named after its folder)
            functions/Hello_World/function.yaml:2:1: concurency: unknown key 'concurency' (did you mean 'concurrency'?)
            """)
        XCTAssertEqual(errorText("command: [./worker]\n", name: String(repeating: "a", count: 64)),
                       "functions/\(String(repeating: "a", count: 64))/function.yaml:1:1: (name): "
                           + "'\(String(repeating: "a", count: 64))' is 64 characters long; a function name has at most 63 "
                           + "(a function is named after its folder)")
    }

    func testYamlSyntaxErrorStillReportsABadName() {
        XCTAssertEqual(errorText("command: [./worker\n", name: "Bad"), """
            functions/Bad/function.yaml:1:1: (name): 'Bad' is not a valid function name; \
            use lower-case letters, digits and '-', starting and ending with a letter or digit \
            (a function is named after its folder)
            functions/Bad/function.yaml:2:1: (yaml): did not find expected ',' or ']' \
            (while parsing a flow sequence at line 1, column 10)
            """)
    }

    func testEmptyFile() {
        XCTAssertEqual(errorText(""),
                       "functions/hello/function.yaml:1:1: command: the file is empty; "
                           + "expected at least a 'command' such as [\"python3\", \"main.py\"]")
    }
}
