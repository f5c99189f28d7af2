import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// A thousand functions deployed and none running (issue 17, section 7): the gateway keeps up
/// with the folder without reading it again. The tight figures (RSS, idle CPU, latencies) are
/// the benchmark's (`Benchmarks/run --only idle-functions`); this test checks the facts behind
/// them with the real binary, a real folder and real workers, in a few seconds.
final class IdleFunctionsEndToEndTests: XCTestCase {
    var gateway: PorticoProcess!
    let marker = "portico-test-\(UUID().uuidString.prefix(8))"
    static let count = 1000

    override func tearDown() {
        gateway?.stop()
        XCTAssertTrue(eventually { Processes.matching(self.marker).isEmpty }, "no worker outlives the gateway")
    }

    static let script = PythonWorker.script(body: #"f"{os.environ['K_REVISION']} {self.path}\n""#)

    func writeFunction(_ name: String, in functions: URL) throws {
        let folder = functions.appendingPathComponent(name)
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        try Self.script.write(to: folder.appendingPathComponent("worker.py"), atomically: false, encoding: .utf8)
        try "command: [\"python3\", \"worker.py\", \"\(marker)\"]\n"
            .write(to: folder.appendingPathComponent("function.yaml"), atomically: false, encoding: .utf8)
    }

    static func name(_ index: Int) -> String { "fn-" + String(repeating: "0", count: 4 - String(index).count) + String(index) }

    /// The registry's counters of its work on the folder (see `FolderLookMetrics`).
    struct Looks: Equatable {
        var all = 0
        var changed = 0
        var hashed = 0
    }

    func looks() throws -> Looks {
        let metrics = try Curl.run(["\(gateway.admin)/metrics"]).body
        func value(_ series: String) -> Int {
            for line in metrics.split(separator: "\n") where line.hasPrefix(series + " ") {
                return Int(Double(line.split(separator: " ").last ?? "") ?? -1)
            }
            return -1
        }
        return Looks(all: value("portico_function_folder_looks_total{scope=\"all\"}"),
                     changed: value("portico_function_folder_looks_total{scope=\"changed\"}"),
                     hashed: value("portico_function_folders_hashed_total"))
    }

    func listedFunctions() throws -> [String: String] {
        let body = try Curl.run(["\(gateway.admin)/functions"]).body
        let json = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any])
        let functions = try XCTUnwrap(json["functions"] as? [[String: Any]])
        return Dictionary(functions.compactMap { entry in
            (entry["name"] as? String).map { ($0, entry["revision"] as? String ?? "") }
        }, uniquingKeysWith: { first, _ in first })
    }

    /// Waits until a whole look at every folder (the poll, every 5 s) read none: the folders
    /// written for the test are new, so the first looks read them again (see
    /// `FolderChangeTracker`'s racy rule).
    func waitUntilLooksReadNothing(file: StaticString = #filePath, line: UInt = #line) throws -> Looks {
        let deadline = Date().addingTimeInterval(60)
        var before = try looks()
        while Date() < deadline {
            var after = before
            // A look is counted once it is done, so its reads are in the same reading.
            XCTAssertTrue(eventually(timeout: 10) {
                after = (try? self.looks()) ?? after
                return after.all > before.all
            }, "the poll looks at the folder", file: file, line: line)
            if after.hashed == before.hashed { return after }
            before = after
        }
        XCTFail("the looks at the folder went on reading folders", file: file, line: line)
        throw HarnessError.notReady
    }

    func testAThousandIdleFunctionsAreWatchedWithoutReadingThemAgain() throws {
        let count = Self.count
        gateway = try PorticoProcess(config: "routes: []") { root in
            let functions = root.appendingPathComponent("Functions")
            for index in 0..<count { try self.writeFunction(Self.name(index), in: functions) }
        }
        let functions = gateway.directory.appendingPathComponent("Functions")
        var listed = try listedFunctions()
        XCTAssertEqual(listed.count, count, "every function is listed")
        XCTAssertTrue(Processes.matching(marker).isEmpty, "deployed, none running")

        // Idle: the poll goes on looking, and reads nothing.
        var quiet = try waitUntilLooksReadNothing()

        // A config reload reads no function folder.
        gateway.signal(SIGHUP)
        XCTAssertTrue(eventually { self.gateway.stderr.contains("config reloaded") }, gateway.stderr)
        var after = quiet
        XCTAssertTrue(eventually { after = (try? self.looks()) ?? after; return after.all > quiet.all },
                      "the poll looks again after the reload")
        XCTAssertEqual(after.hashed, quiet.hashed, "a reload and the looks after it read no folder")

        // A change to one folder: that folder is read, not the thousand. Its new revision
        // starts a worker and takes over once the worker is ready.
        quiet = after
        let changed = Self.name(500)
        let oldRevision = try XCTUnwrap(listed[changed])
        let handle = try FileHandle(forWritingTo: functions.appendingPathComponent("\(changed)/worker.py"))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data("# changed\n".utf8))
        try handle.close()
        XCTAssertTrue(eventually(timeout: 30) {
            guard let revision = (try? self.listedFunctions())?[changed] else { return false }
            return revision != oldRevision
        }, "the changed function is redeployed: \(gateway.stderr.suffix(2000))")
        let response = try Curl.run(["\(gateway.http)/function/\(changed)/x"])
        XCTAssertEqual(response.status, 200)
        XCTAssertFalse(response.body.hasPrefix(oldRevision), "the new revision serves: \(response.body)")
        after = try looks()
        XCTAssertGreaterThan(after.changed, quiet.changed, "inotify named the changed folder")
        XCTAssertGreaterThanOrEqual(after.hashed - quiet.hashed, 1)
        // Read when inotify named it, and again by a look while its change is recent (the
        // racy rule); the old poll read all 1,000 on every look.
        XCTAssertLessThan(after.hashed - quiet.hashed, 10, "only the changed folder was read")
        quiet = after

        // A new folder, written in place: it is watched as it appears, read, and routed.
        let added = "fn-new"
        let written = Date()
        try writeFunction(added, in: functions)
        var status = 0
        XCTAssertTrue(eventually(timeout: 30) {
            status = (try? Curl.run(["\(self.gateway.http)/function/\(added)/hi"]).status) ?? 0
            return status == 200
        }, "the new function answers: \(status) \(gateway.stderr.suffix(2000))")
        // For the record: the benchmark times this; here it is only printed.
        print("new folder routed and answered (a cold start included) after \(Int(Date().timeIntervalSince(written) * 1000)) ms")
        after = try looks()
        XCTAssertGreaterThan(after.changed, quiet.changed, "inotify named the new folder")
        XCTAssertLessThan(after.hashed - quiet.hashed, 10, "only the new folder was read")
        listed = try listedFunctions()
        XCTAssertEqual(listed.count, count + 1)
    }
}
