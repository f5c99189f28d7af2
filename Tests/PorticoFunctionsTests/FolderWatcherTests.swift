import Dispatch
import Foundation
import NIOConcurrencyHelpers
@testable import PorticoFunctions
import XCTest

/// The watcher against a real folder and real inotify: it names the function whose tree
/// changed, however deep, including in folders that appeared after it started.
final class FolderWatcherTests: XCTestCase {
    private var root: String!
    private let queue = DispatchQueue(label: "folder-watcher-test")
    private let changes = NIOLockedValueBox<[Set<String>]>([])
    private var watcher: FolderWatcher!

    override func setUpWithError() throws {
        root = FileManager.default.temporaryDirectory.appendingPathComponent("portico-watch-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: root + "/a/lib", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: root + "/b", withIntermediateDirectories: true)
        let changes = self.changes
        // The poll's looks at everything come every 5 s; these tests are about what inotify names.
        watcher = FolderWatcher(path: root, queue: queue) { change in
            if case .folders(let names) = change { changes.withLockedValue { $0.append(names) } }
        }
        watcher.start()
        queue.sync {}  // started: the folders are watched
    }

    override func tearDown() {
        queue.sync { watcher.stopOnQueue() }
        try? FileManager.default.removeItem(atPath: root)
    }

    private func write(_ relative: String) throws {
        try "x\n".write(toFile: root + "/" + relative, atomically: false, encoding: .utf8)
    }

    /// Waits for a change that names `function`, then forgets what was seen.
    private func waitForChange(naming function: String, file: StaticString = #filePath, line: UInt = #line) {
        let deadline = Date().addingTimeInterval(4)
        while Date() < deadline {
            if changes.withLockedValue({ $0.contains { $0.contains(function) } }) {
                changes.withLockedValue { $0 = [] }
                return
            }
            usleep(20_000)
        }
        XCTFail("no change named \(function): \(changes.withLockedValue { $0 })", file: file, line: line)
    }

    func testAChangeDeepInAFunctionNamesThatFunctionOnly() throws {
        try write("a/lib/util.py")
        waitForChange(naming: "a")
        try write("b/main.py")
        waitForChange(naming: "b")
        XCTAssertFalse(changes.withLockedValue { $0.contains { $0.contains("a") } })
    }

    /// A folder made after the watcher started (a new function, and a folder inside it) is
    /// watched as it appears, so a later write deep in it is named too.
    func testFoldersThatAppearLaterAreWatched() throws {
        try FileManager.default.createDirectory(atPath: root + "/c", withIntermediateDirectories: false)
        waitForChange(naming: "c")
        try FileManager.default.createDirectory(atPath: root + "/c/sub", withIntermediateDirectories: false)
        waitForChange(naming: "c")
        try write("c/sub/handler.py")
        waitForChange(naming: "c")
    }

    func testHiddenEntriesAreNotChanges() throws {
        try write("a/.main.py.swp")
        try FileManager.default.createDirectory(atPath: root + "/.staging", withIntermediateDirectories: false)
        try write("b/main.py")  // a visible change after them, to know the events were handled
        waitForChange(naming: "b")
        XCTAssertFalse(changes.withLockedValue { $0.contains { $0.contains("a") || $0.contains(".staging") } })
    }
}
