import PorticoConfig
import PorticoCore

#if canImport(Glibc)
import Glibc
#endif

/// Walks a function folder with `stat` alone and sums up what it saw as a `FolderSignature`.
///
/// The walk follows the rules of `FunctionRevision.hash` (hidden entries skipped at every
/// level, symbolic links seen as links and not followed, sockets and FIFOs left out), so a
/// change the hash would see changes the signature too. Folders count by their path only:
/// their own times change when a hidden entry comes or goes (an editor's swap file, `.git`),
/// which the hash ignores; a visible entry that comes or goes is an entry of its own.
///
/// It works on descriptors (`openat`, `fstatat`) and never builds a path string, so a look
/// at a thousand small folders costs a few thousand system calls and no allocation per entry.
enum FolderSignatureReader {
    struct Walk: Equatable {
        var signature: FolderSignature
        /// Whether the folder holds a `function.yaml` (a folder without one is no function).
        var hasManifest: Bool
    }

    /// The signature of the tree at `path` (a symbolic link to a folder is followed at the
    /// top, as the functions folder's scan does), or nil if it cannot be walked: then the
    /// folder is read in full, which reports why.
    static func read(_ path: String) -> Walk? {
        let takenAt = realtimeNanoseconds()
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        var walk = Accumulator()
        guard walk.folder(fd, pathHash: Mix.seed, top: true) else { return nil }
        // The count keeps a tree whose entries' hashes sum to the same value apart from another.
        var final = Mix()
        final.add(walk.sum)
        final.add(walk.count)
        return Walk(signature: FolderSignature(digest: final.value, newestChange: walk.newest, takenAt: takenAt),
                    hasManifest: walk.hasManifest)
    }

    private static func realtimeNanoseconds() -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return Int64(now.tv_sec) * 1_000_000_000 + Int64(now.tv_nsec)
    }

    private struct Accumulator {
        /// Entries are summed, not hashed in order: `readdir`'s order is the file system's, and
        /// sorting would cost an allocation per folder for nothing.
        var sum: UInt64 = 0
        var count: UInt64 = 0
        var newest: Int64 = 0
        var hasManifest = false

        /// Adds the entries of the folder open at `fd` (which this closes); false if it could
        /// not be listed.
        mutating func folder(_ fd: Int32, pathHash: UInt64, top: Bool) -> Bool {
            guard let directory = fdopendir(fd) else {
                close(fd)
                return false
            }
            defer { closedir(directory) }
            let dirFD = dirfd(directory)
            while let entry = readdir(directory) {
                let type = entry.pointee.d_type
                let ok = withUnsafePointer(to: &entry.pointee.d_name) { tuple in
                    tuple.withMemoryRebound(to: CChar.self, capacity: 256) { name in
                        self.entry(name, type: type, in: dirFD, pathHash: pathHash, top: top)
                    }
                }
                if !ok { return false }
            }
            return true
        }

        private mutating func entry(_ name: UnsafePointer<CChar>, type: UInt8, in dirFD: Int32, pathHash: UInt64,
                                    top: Bool) -> Bool {
            if name[0] == CChar(UInt8(ascii: ".")) { return true }  // hidden, `.` and `..`
            var hasher = Mix(pathHash)
            hasher.add(UnsafeRawBufferPointer(start: name, count: strlen(name)))
            let entryPath = hasher.value
            if top && strcmp(name, FunctionManifestLoader.fileName) == 0 {
                var followed = stat()
                hasManifest = fstatat(dirFD, name, &followed, 0) == 0
            }
            var info = stat()
            if type != UInt8(DT_DIR) {
                guard fstatat(dirFD, name, &info, AT_SYMLINK_NOFOLLOW) == 0 else {
                    // Gone since `readdir` (a file being replaced): the change shows as a
                    // missing entry, and the next look sees what replaced it.
                    return true
                }
            } else {
                info.st_mode = S_IFDIR
            }
            switch info.st_mode & S_IFMT {
            case S_IFDIR:
                add(entryPath, kind: 1)
                let child = openat(dirFD, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                guard child >= 0 else { return false }
                return folder(child, pathHash: entryPath, top: false)
            case S_IFREG, S_IFLNK:
                var fields = Mix(entryPath)
                fields.add(UInt64(info.st_mode))
                fields.add(UInt64(bitPattern: Int64(info.st_size)))
                fields.add(UInt64(info.st_ino))
                fields.add(UInt64(info.st_dev))
                fields.add(UInt64(bitPattern: Int64(info.st_mtim.tv_sec)))
                fields.add(UInt64(bitPattern: Int64(info.st_mtim.tv_nsec)))
                fields.add(UInt64(bitPattern: Int64(info.st_ctim.tv_sec)))
                fields.add(UInt64(bitPattern: Int64(info.st_ctim.tv_nsec)))
                add(fields.value, kind: 2)
                let mtime = Int64(info.st_mtim.tv_sec) * 1_000_000_000 + Int64(info.st_mtim.tv_nsec)
                let ctime = Int64(info.st_ctim.tv_sec) * 1_000_000_000 + Int64(info.st_ctim.tv_nsec)
                newest = max(newest, mtime, ctime)
                return true
            default:
                return true  // sockets and FIFOs, as the hash skips them
            }
        }

        private mutating func add(_ hash: UInt64, kind: UInt64) {
            var mixed = Mix(hash)
            mixed.add(kind)
            sum &+= mixed.value
            count += 1
        }
    }

    /// FNV-1a over bytes and whole words: fast, the same on every run, not for anything adversarial.
    private struct Mix {
        static let seed: UInt64 = 0xcbf2_9ce4_8422_2325
        private static let prime: UInt64 = 0x0000_0100_0000_01b3
        private(set) var value: UInt64

        init(_ seed: UInt64 = Mix.seed) { value = seed }

        /// The bytes, then a 0 that ends them (a name holds none), so `ab`+`c` differs from `a`+`bc`.
        mutating func add(_ bytes: UnsafeRawBufferPointer) {
            for byte in bytes { value = (value ^ UInt64(byte)) &* Self.prime }
            value = value &* Self.prime
        }

        mutating func add(_ word: UInt64) {
            for shift in stride(from: UInt64(0), to: 64, by: 8) {
                value = (value ^ ((word >> shift) & 0xff)) &* Self.prime
            }
        }
    }
}
