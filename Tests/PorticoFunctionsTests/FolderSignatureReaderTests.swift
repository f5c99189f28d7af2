import Foundation
@testable import PorticoFunctions
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// The stat walk against a real folder: every change the content hash would see changes the
/// signature, and what the hash ignores does not.
final class FolderSignatureReaderTests: XCTestCase {
    private var folder: String!

    override func setUpWithError() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("portico-signature-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder + "/lib", withIntermediateDirectories: true)
        try write("function.yaml", "command: [\"python3\", \"main.py\"]\n")
        try write("main.py", "print('hello')\n")
        try write("lib/util.py", "X = 1\n")
    }

    override func tearDown() {
        try? FileManager.default.removeItem(atPath: folder)
    }

    private func write(_ relative: String, _ text: String) throws {
        try text.write(toFile: folder + "/" + relative, atomically: false, encoding: .utf8)
    }

    /// Sets every visible file's mtime an hour back, so a later write shows in the mtime even
    /// within the file system clock's tick (the test is about the walk, not about the clock).
    private func age() {
        var times = [timespec(tv_sec: time(nil) - 3600, tv_nsec: 0), timespec(tv_sec: time(nil) - 3600, tv_nsec: 0)]
        for file in ["function.yaml", "main.py", "lib/util.py"] {
            XCTAssertEqual(utimensat(AT_FDCWD, folder + "/" + file, &times, 0), 0)
        }
    }

    private func digest() throws -> UInt64 {
        try XCTUnwrap(FolderSignatureReader.read(folder)).signature.digest
    }

    func testAnUnchangedTreeKeepsItsSignature() throws {
        let walk = try XCTUnwrap(FolderSignatureReader.read(folder))
        XCTAssertTrue(walk.hasManifest)
        XCTAssertEqual(try digest(), walk.signature.digest)
        _ = try String(contentsOfFile: folder + "/main.py", encoding: .utf8)  // a read is no change
        XCTAssertEqual(try digest(), walk.signature.digest)
    }

    func testASameSizeEditOfANestedFileChangesIt() throws {
        age()
        let before = try digest()
        try write("lib/util.py", "X = 2\n")
        XCTAssertNotEqual(try digest(), before)
    }

    func testANewFileARemovedFileAndARenameChangeIt() throws {
        var seen: Set<UInt64> = [try digest()]
        try write("lib/more.py", "")
        XCTAssertTrue(seen.insert(try digest()).inserted, "a new (empty) file")
        try FileManager.default.moveItem(atPath: folder + "/lib/more.py", toPath: folder + "/lib/other.py")
        XCTAssertTrue(seen.insert(try digest()).inserted, "a rename")
        try FileManager.default.removeItem(atPath: folder + "/lib/other.py")
        try FileManager.default.createDirectory(atPath: folder + "/empty", withIntermediateDirectories: false)
        XCTAssertTrue(seen.insert(try digest()).inserted, "a new empty folder")
    }

    func testAChangedExecutableBitChangesIt() throws {
        let before = try digest()
        XCTAssertEqual(chmod(folder + "/main.py", 0o755), 0)
        XCTAssertNotEqual(try digest(), before)
    }

    /// The hash skips hidden entries at every level (`.git`, editors' swap files), so their
    /// churn must not make the folder look changed, and the folder's own times (which change
    /// with them) are not part of the signature.
    func testHiddenEntriesDoNotCount() throws {
        age()
        let before = try digest()
        try FileManager.default.createDirectory(atPath: folder + "/.git", withIntermediateDirectories: false)
        try write(".git/HEAD", "ref: refs/heads/main\n")
        try write(".main.py.swp", "swap")
        try write("lib/.cache", "x")
        XCTAssertEqual(try digest(), before)
    }

    /// A symbolic link counts as a link (the hash records its target path), so what it points
    /// at can change without changing the signature, and a retargeted link changes it.
    func testSymbolicLinksAreNotFollowed() throws {
        let outside = folder + "-outside"
        try FileManager.default.createDirectory(atPath: outside, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: outside) }
        try FileManager.default.createSymbolicLink(atPath: folder + "/shared", withDestinationPath: outside)
        let before = try digest()
        try "new".write(toFile: outside + "/file", atomically: false, encoding: .utf8)
        XCTAssertEqual(try digest(), before)
        try FileManager.default.removeItem(atPath: folder + "/shared")
        try FileManager.default.createSymbolicLink(atPath: folder + "/shared", withDestinationPath: "/tmp")
        XCTAssertNotEqual(try digest(), before)
    }

    func testTheNewestChangeIsTheNewestFileTime() throws {
        age()
        let aged = try XCTUnwrap(FolderSignatureReader.read(folder)).signature
        // ctime cannot be set back, so the newest change is the utimensat of `age()`: about now.
        XCTAssertLessThanOrEqual(aged.newestChange, aged.takenAt + 1_000_000_000)
        XCTAssertGreaterThan(aged.newestChange, aged.takenAt - 60 * 1_000_000_000)
    }

    func testAFolderWithoutManifestOrMissingAltogether() throws {
        try FileManager.default.removeItem(atPath: folder + "/function.yaml")
        XCTAssertEqual(FolderSignatureReader.read(folder)?.hasManifest, false)
        XCTAssertNil(FolderSignatureReader.read(folder + "/nothing-here"))
        XCTAssertNil(FolderSignatureReader.read(folder + "/main.py"), "a file is not a folder")
    }
}
