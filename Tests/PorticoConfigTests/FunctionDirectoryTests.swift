import Foundation
import PorticoConfig
import XCTest

/// Which folders become functions, and how a broken one is reported without hiding the rest.
final class FunctionDirectoryTests: XCTestCase {
    func testScanLoadsGoodFunctionsReportsBadOnesAndSkipsHiddenAndNonFunctionFolders() throws {
        let root = try TemporaryFolder()
        try root.write("zeta/function.yaml", "command: [./worker]\nmode: exec\n")
        try root.write("hello/function.yaml", "command: [python3, main.py]\n")
        try root.write("broken/function.yaml", "command: python3 main.py\n")
        // A deploy in progress: complete and valid, but not yet renamed into place.
        try root.write(".staging-hello/function.yaml", "command: [./worker]\n")
        try root.write("assets/logo.txt", "not a function\n")
        try root.write("README.md", "# functions\n")

        let scan = FunctionDirectory.scan(root.path)

        XCTAssertEqual(scan.manifests.map(\.name), ["hello", "zeta"])
        XCTAssertEqual(scan.manifests.map(\.directory), [root.path + "/hello", root.path + "/zeta"])
        XCTAssertEqual(scan.manifest(named: "zeta")?.mode, .exec)
        XCTAssertEqual(Array(scan.failures.keys), ["broken"])
        XCTAssertEqual(scan.failures["broken"]?.description,
                       "\(root.path)/broken/function.yaml:1:10: command: expected a list such as [\"python3\", \"main.py\"], "
                           + "got 'python3 main.py'; use a list: commands run without a shell, so a string is not split into words")
    }

    func testAFolderWithAnInvalidNameIsAFailureUnderThatName() throws {
        let root = try TemporaryFolder()
        try root.write("Hello_World/function.yaml", "command: [./worker]\n")

        let scan = FunctionDirectory.scan(root.path)

        XCTAssertEqual(scan.manifests, [])
        XCTAssertEqual(scan.failures["Hello_World"]?.diagnostics.map(\.key), ["(name)"])
    }

    func testMissingFunctionsFolderIsAnEmptyScan() throws {
        let root = try TemporaryFolder()
        let scan = FunctionDirectory.scan(root.path + "/functions")
        XCTAssertEqual(scan.manifests, [])
        XCTAssertTrue(scan.failures.isEmpty)
    }
}
