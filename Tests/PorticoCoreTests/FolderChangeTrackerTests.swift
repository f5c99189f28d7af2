import PorticoCore
import XCTest

final class FolderChangeTrackerTests: XCTestCase {
    private let second: Int64 = 1_000_000_000

    /// A folder whose newest change is `age` seconds old at the look `at` (seconds).
    private func signature(_ digest: UInt64, at: Int64, age: Int64) -> FolderSignature {
        FolderSignature(digest: digest, newestChange: (at - age) * second, takenAt: at * second)
    }

    private func isRead(_ decision: FolderChangeTracker<String>.Decision) -> Bool {
        if case .read = decision { return true }
        return false
    }

    private func reused(_ decision: FolderChangeTracker<String>.Decision) -> String? {
        if case .unchanged(let reading) = decision { return reading }
        return nil
    }

    func testAFolderIsReadOnceThenReusedWhileItsSignatureHolds() {
        var tracker = FolderChangeTracker<String>()
        XCTAssertTrue(isRead(tracker.check("f", signature: signature(1, at: 100, age: 60))), "never read: read it")
        tracker.record("f", signature: signature(1, at: 100, age: 60), reading: "v1")
        // Every later look (the poll, every 2 s) finds the same stat: nothing is read.
        for look in stride(from: Int64(102), to: 200, by: 2) {
            XCTAssertEqual(reused(tracker.check("f", signature: signature(1, at: look, age: look - 40))), "v1")
        }
    }

    func testAChangedSignatureIsReadAgain() {
        var tracker = FolderChangeTracker<String>()
        tracker.record("f", signature: signature(1, at: 100, age: 60), reading: "v1")
        XCTAssertTrue(isRead(tracker.check("f", signature: signature(2, at: 102, age: 60))))
        tracker.record("f", signature: signature(2, at: 102, age: 60), reading: "v2")
        XCTAssertEqual(reused(tracker.check("f", signature: signature(2, at: 104, age: 62))), "v2")
        XCTAssertTrue(isRead(tracker.check("f", signature: signature(1, at: 106, age: 60))),
                      "back to an older signature is a change too")
    }

    /// Git's racy-clean case: a file changed within one tick of the file system's clock after
    /// it was read keeps the same stat. A reading of a tree changed less than `racyWindow`
    /// before its walk is not trusted, so the next look reads it again even with an equal
    /// signature; once the tree has been quiet for the window, the reading is trusted.
    func testARecentlyChangedFolderIsReadAgainUntilItIsOlderThanTheRacyWindow() {
        var tracker = FolderChangeTracker<String>(racyWindow: 3 * second)
        let justChanged = FolderSignature(digest: 7, newestChange: 100 * second, takenAt: 100 * second + 1_000_000)
        tracker.record("f", signature: justChanged, reading: "v1")
        let sameStatLater = FolderSignature(digest: 7, newestChange: 100 * second, takenAt: 102 * second)
        XCTAssertTrue(isRead(tracker.check("f", signature: sameStatLater)), "racy: the same stat proves nothing yet")
        tracker.record("f", signature: sameStatLater, reading: "v1")
        XCTAssertTrue(isRead(tracker.check("f", signature: sameStatLater)), "still within 3 s of the change")
        let settled = FolderSignature(digest: 7, newestChange: 100 * second, takenAt: 103 * second + 1)
        tracker.record("f", signature: settled, reading: "v1")
        XCTAssertEqual(reused(tracker.check("f", signature: settled)), "v1", "3 s quiet: trusted from now on")
    }

    func testAFolderThatCouldNotBeWalkedIsReadEveryTime() {
        var tracker = FolderChangeTracker<String>()
        tracker.record("f", signature: nil, reading: "error")
        XCTAssertTrue(isRead(tracker.check("f", signature: nil)))
        XCTAssertTrue(isRead(tracker.check("f", signature: signature(1, at: 100, age: 60))))
        XCTAssertEqual(tracker.lastReading(of: "f"), "error")
    }

    func testFoldersAreTrackedApartAndGoneOnesAreForgotten() {
        var tracker = FolderChangeTracker<String>()
        tracker.record("a", signature: signature(1, at: 100, age: 60), reading: "a1")
        tracker.record("b", signature: signature(1, at: 100, age: 60), reading: "b1")
        XCTAssertTrue(isRead(tracker.check("c", signature: signature(1, at: 100, age: 60))), "same stat, other folder")
        XCTAssertEqual(reused(tracker.check("b", signature: signature(1, at: 102, age: 62))), "b1")
        tracker.keepOnly(["b"])
        XCTAssertEqual(tracker.count, 1)
        XCTAssertFalse(tracker.knows("a"))
        XCTAssertTrue(isRead(tracker.check("a", signature: signature(1, at: 104, age: 64))), "a folder that comes back is read")
        XCTAssertEqual(reused(tracker.check("b", signature: signature(1, at: 104, age: 64))), "b1")
    }
}
