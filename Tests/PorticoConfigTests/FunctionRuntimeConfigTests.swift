import Foundation
import PorticoConfig
import XCTest

/// `runtime: python` with a `handler`, and its template keys.
final class FunctionRuntimeConfigTests: XCTestCase {
    private func parse(_ yaml: String) throws -> FunctionManifest {
        try FunctionManifestLoader.parse(yaml: yaml, file: "functions/api/function.yaml", name: "api", directory: "functions/api")
    }

    private func errorText(_ yaml: String, file: StaticString = #filePath, line: UInt = #line) -> String {
        rejectionText(of: { _ = try self.parse(yaml) }, file: file, line: line)
    }

    func testARuntimeWithAHandlerNeedsNoCommandAndForksFromATemplateByDefault() throws {
        let manifest = try parse("runtime: python\nhandler: api.wsgi:app\n")
        XCTAssertEqual(manifest.runtime, .python)
        XCTAssertEqual(manifest.handler, "api.wsgi:app")
        XCTAssertEqual(manifest.command, [])
        XCTAssertTrue(manifest.usesTemplate)
        XCTAssertTrue(manifest.idleTemplate)

        let onDemand = try parse("runtime: python\nhandler: app:application\nidleTemplate: false\n")
        XCTAssertFalse(onDemand.idleTemplate)
        let plain = try parse("runtime: python\nhandler: app:application\ntemplate: false\n")
        XCTAssertFalse(plain.usesTemplate)
    }

    func testACommandWithoutARuntimeStaysAsItWas() throws {
        let manifest = try parse("command: [python3, main.py]\n")
        XCTAssertNil(manifest.runtime)
        XCTAssertNil(manifest.handler)
    }

    func testMistakesAreReportedWithLineAndKey() {
        XCTAssertEqual(errorText("runtime: python\n"),
                       "functions/api/function.yaml:1:1: handler: missing required key 'handler', as MODULE:NAME, such as "
                           + "app:application (a WSGI application; with mode: lambda, a handler(event, context))")
        XCTAssertEqual(errorText("runtime: python\nhandler: app\n"),
                       "functions/api/function.yaml:2:10: handler: expected MODULE:NAME such as app:application or api.wsgi:app, got 'app'")
        XCTAssertEqual(errorText("runtime: python\nhandler: 1app:x\n"),
                       "functions/api/function.yaml:2:10: handler: expected MODULE:NAME such as app:application or api.wsgi:app, got '1app:x'")
        XCTAssertTrue(errorText("runtime: ruby\nhandler: a:b\n").hasPrefix("functions/api/function.yaml:1:10: runtime: "))
        XCTAssertEqual(errorText("runtime: python\nhandler: a:b\ncommand: [python3, x.py]\n"),
                       "functions/api/function.yaml:3:1: command: a function has either a 'command' or a 'runtime' with a "
                           + "'handler', not both: with a runtime, Portico runs the handler itself")
        XCTAssertEqual(errorText("command: [python3, x.py]\nhandler: a:b\n"),
                       "functions/api/function.yaml:2:1: handler: only with 'runtime: python' (the handler Portico runs) "
                           + "or mode: lambda (the runtime's _HANDLER)")
        XCTAssertEqual(errorText("runtime: python\nhandler: a:b\nmode: exec\n"),
                       "functions/api/function.yaml:1:1: runtime: only for mode: http; an exec function starts one process per request")
        XCTAssertEqual(errorText("runtime: python\nhandler: a:b\nprotocol: h2c\n"),
                       "functions/api/function.yaml:3:1: protocol: the python runtime serves HTTP/1.1 only")
        XCTAssertEqual(errorText("runtime: python\nhandler: a:b\ntemplate: false\nidleTemplate: false\n"),
                       "functions/api/function.yaml:4:1: idleTemplate: only with a template; 'template: false' starts every worker plainly")
        XCTAssertTrue(errorText("runtime: python\nhandler: a:b\ntemplate: maybe\n").hasPrefix("functions/api/function.yaml:3:11: template: "))
    }

    func testMaxStreamDurationDefaultsToAnHourAndIsForHTTPWorkersOnly() throws {
        XCTAssertEqual(try parse("command: [./w]\n").maxStreamDuration, .seconds(3600))
        XCTAssertEqual(try parse("command: [./w]\nmaxStreamDuration: 10m\n").maxStreamDuration, .seconds(600))
        XCTAssertEqual(errorText("command: [./w]\nmode: exec\nmaxStreamDuration: 10m\n"),
                       "functions/api/function.yaml:3:1: maxStreamDuration: only for mode: http; an exec function starts one process per request")
        XCTAssertTrue(errorText("command: [./w]\nmaxStreamDuration: soon\n").hasPrefix("functions/api/function.yaml:2:20: maxStreamDuration: "))
    }

    /// Every function under config/examples/functions has a manifest that loads.
    func testEveryExampleFunctionLoads() throws {
        let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let examples = repository.appendingPathComponent("config/examples/functions")
        let folders = try FileManager.default.contentsOfDirectory(atPath: examples.path)
        XCTAssertTrue(folders.contains("python-wsgi"), "\(folders)")
        for folder in folders {
            XCTAssertNoThrow(try FunctionManifestLoader.load(directory: examples.appendingPathComponent(folder).path), folder)
        }
        let wsgi = try FunctionManifestLoader.load(directory: examples.appendingPathComponent("python-wsgi").path)
        XCTAssertEqual(wsgi.runtime, .python)
    }
}
