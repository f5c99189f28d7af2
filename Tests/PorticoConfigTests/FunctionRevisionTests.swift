import Foundation
@testable import PorticoConfig
import XCTest

/// A revision changes exactly when what would be deployed changes.
final class FunctionRevisionTests: XCTestCase {
    private func makeFunction() throws -> TemporaryFolder {
        let folder = try TemporaryFolder()
        try folder.write("main.py", "print('hello')\n")
        try folder.write("lib/util.py", "X = 1\n")
        try folder.write(".git/HEAD", "ref: refs/heads/main\n")
        try folder.write(".portico-build/worker", "binary\n")
        return folder
    }

    func testHashIsTwelveLowerCaseHexCharactersAndStable() throws {
        let folder = try makeFunction()
        let first = try FunctionRevision.hash(directory: folder.path)

        XCTAssertEqual(first.count, 12)
        XCTAssertTrue(first.allSatisfy { "0123456789abcdef".contains($0) }, first)
        XCTAssertEqual(try FunctionRevision.hash(directory: folder.path), first)
        // Only relative paths count, so the same content elsewhere is the same revision.
        let copy = try makeFunction()
        XCTAssertEqual(try FunctionRevision.hash(directory: copy.path), first)
    }

    func testHashOfAKnownTreeIsPinned() throws {
        // Pinned so a change to the algorithm (which would restart every function on upgrade)
        // is a deliberate one. The value was computed independently with a short Python
        // script implementing the same encoding.
        let folder = try TemporaryFolder()
        try folder.write("a.txt", "hi\n")
        try folder.write("bin/run", "#!/bin/sh\n")
        try folder.setPermissions("a.txt", 0o644)
        try folder.setPermissions("bin/run", 0o755)
        XCTAssertEqual(try FunctionRevision.hash(directory: folder.path), "d9af92f1004e")
    }

    func testEditingAFileChangesTheHashAndRestoringItRestoresIt() throws {
        let folder = try makeFunction()
        let original = try FunctionRevision.hash(directory: folder.path)

        try folder.write("lib/util.py", "X = 2\n")
        XCTAssertNotEqual(try FunctionRevision.hash(directory: folder.path), original)

        try folder.write("lib/util.py", "X = 1\n")
        XCTAssertEqual(try FunctionRevision.hash(directory: folder.path), original)
    }

    func testMakingAFileExecutableChangesTheHash() throws {
        let folder = try makeFunction()
        try folder.setPermissions("main.py", 0o644)
        let original = try FunctionRevision.hash(directory: folder.path)

        try folder.setPermissions("main.py", 0o755)
        XCTAssertNotEqual(try FunctionRevision.hash(directory: folder.path), original)
    }

    func testRenamingOrAddingAFileChangesTheHash() throws {
        let folder = try makeFunction()
        let original = try FunctionRevision.hash(directory: folder.path)

        try FileManager.default.moveItem(atPath: folder.path + "/lib/util.py", toPath: folder.path + "/lib/utils.py")
        let renamed = try FunctionRevision.hash(directory: folder.path)
        XCTAssertNotEqual(renamed, original)

        try folder.write("empty.txt", "")
        XCTAssertNotEqual(try FunctionRevision.hash(directory: folder.path), renamed)
    }

    func testHiddenEntriesAndBuildOutputsDoNotCount() throws {
        let folder = try makeFunction()
        let original = try FunctionRevision.hash(directory: folder.path)

        try folder.write(".portico-build/worker", "rebuilt binary\n")
        try folder.write(".git/HEAD", "ref: refs/heads/other\n")
        try folder.write("lib/.util.py.swp", "editor state\n")

        XCTAssertEqual(try FunctionRevision.hash(directory: folder.path), original)
    }

    func testLargeFilesAreHashedWhole() throws {
        // Bigger than one read chunk, so a change past the first chunk must still be seen.
        let folder = try TemporaryFolder()
        var bytes = [UInt8](repeating: 7, count: 600 * 1024)
        try Data(bytes).write(to: URL(fileURLWithPath: folder.path + "/model.bin"))
        let original = try FunctionRevision.hash(directory: folder.path)

        bytes[bytes.count - 1] = 8
        try Data(bytes).write(to: URL(fileURLWithPath: folder.path + "/model.bin"))
        XCTAssertNotEqual(try FunctionRevision.hash(directory: folder.path), original)
    }

    func testMissingFolderThrows() throws {
        let folder = try TemporaryFolder()
        XCTAssertThrowsError(try FunctionRevision.hash(directory: folder.path + "/nope")) { error in
            XCTAssertEqual("\(error)", "\(folder.path)/nope:1:1: (directory): no such directory")
        }
    }

    func testFNV1aMatchesPublishedTestVectors() {
        // From the FNV reference test suite (http://www.isthe.com/chongo/src/fnv/test_fnv.c).
        func fnv(_ s: String) -> UInt64 {
            var hasher = FNV1a64()
            hasher.add(s.utf8)
            return hasher.value
        }
        XCTAssertEqual(fnv(""), 0xcbf2_9ce4_8422_2325)
        XCTAssertEqual(fnv("a"), 0xaf63_dc4c_8601_ec8c)
        XCTAssertEqual(fnv("foobar"), 0x8594_4171_f739_67e8)
    }
}
