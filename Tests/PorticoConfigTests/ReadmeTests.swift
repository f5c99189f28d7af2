import Foundation
import XCTest

/// What the README shows a newcomer must be what the repository has.
final class ReadmeTests: XCTestCase {
    private let root = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    private func read(_ path: String) throws -> String {
        try String(contentsOf: root.appendingPathComponent(path), encoding: .utf8)
    }

    /// The hello-function snippet is the example function, file for file.
    func testHelloSnippetsAreTheExampleFunctionsFiles() throws {
        let readme = try read("README.md")
        for (path, language) in [("Functions/hello/main.py", "python"), ("Functions/hello/function.yaml", "yaml")] {
            let block = "```\(language)\n# \(path)\n" + (try read(path)) + "```"
            XCTAssertTrue(readme.contains(block), "README.md shows \(path) as it is")
        }
    }

    /// The two commands a newcomer runs come first, and the test command is the one CI runs.
    func testTheFirstCommandsAreTheOnesCIRuns() throws {
        let readme = try read("README.md")
        let ci = try read(".ci/run")
        let firstBlock = try XCTUnwrap(readme.components(separatedBy: "```sh\n").dropFirst().first?
            .components(separatedBy: "```").first)
        let commands = firstBlock.split(separator: "\n").map { $0.components(separatedBy: "#")[0].trimmingCharacters(in: .whitespaces) }
        XCTAssertEqual(commands.count, 2)
        XCTAssertTrue(commands[0].hasPrefix("swift run -c release portico serve"), commands[0])
        XCTAssertTrue(ci.split(separator: "\n").contains { $0 == Substring(commands[1]) }, "CI runs `\(commands[1])`")
    }
}
