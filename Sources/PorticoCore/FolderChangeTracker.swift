/// What `stat` says of a folder tree, cheaply: enough to tell that nothing in it changed
/// without reading a byte of its files.
public struct FolderSignature: Sendable, Equatable {
    /// A digest of every entry's relative path, type, size, permissions, inode, mtime and ctime.
    public var digest: UInt64
    /// The newest mtime or ctime in the tree (the folders' own included), in nanoseconds since
    /// the epoch.
    public var newestChange: Int64
    /// When the walk that made this signature started, by the wall clock the file system
    /// stamps files with, in nanoseconds since the epoch.
    public var takenAt: Int64

    public init(digest: UInt64, newestChange: Int64, takenAt: Int64) {
        self.digest = digest
        self.newestChange = newestChange
        self.takenAt = takenAt
    }
}

/// Remembers what was read from each function folder (its manifest and content hash), and
/// says when a folder must be read again: only when its `FolderSignature` changed.
///
/// Reading a folder means hashing every byte in it; a signature costs one `stat` per entry.
/// With a thousand functions, rehashing every folder on each look was most of what an idle
/// gateway did. Git's index faces the same question and this follows its answer, including
/// its "racy clean" rule: a file changed twice within one tick of the file system's clock,
/// keeping its size, shows the same stat after both changes. So a reading is trusted only once
/// its tree's newest change is older than `racyWindow` at the time the signature was taken;
/// until then, each look reads the folder again (once, usually: a look a few seconds later finds
/// the tree settled).
///
/// Pure: the registry walks the folder, asks `check`, and reports what it read with `record`.
public struct FolderChangeTracker<Reading>: Sendable where Reading: Sendable {
    public enum Decision: Sendable {
        /// Nothing changed since `Reading` was taken: use it.
        case unchanged(Reading)
        /// Read the folder (and `record` what was read).
        case read
    }

    private struct Entry: Sendable {
        var signature: FolderSignature?
        var reading: Reading
        /// Whether an equal signature proves the folder unchanged (see the racy rule above).
        var trusted: Bool
    }

    /// Coarser than the timestamps of every common file system (FAT's 2 s, the 1 s of ext3 and
    /// of many network file systems), so a second change in the same tick cannot hide.
    public let racyWindow: Int64
    private var entries: [String: Entry] = [:]

    public init(racyWindow: Int64 = 3_000_000_000) {
        self.racyWindow = racyWindow
    }

    /// Whether folder `name`, whose tree now has `signature` (nil: it could not be walked),
    /// must be read again.
    public func check(_ name: String, signature: FolderSignature?) -> Decision {
        // The digest covers every stat field; the time of the look is not part of what the tree is.
        guard let entry = entries[name], entry.trusted, let signature, entry.signature?.digest == signature.digest
        else { return .read }
        return .unchanged(entry.reading)
    }

    /// The reading of the folder whose tree had `signature` when the walk before the read began.
    public mutating func record(_ name: String, signature: FolderSignature?, reading: Reading) {
        let trusted = signature.map { $0.newestChange < $0.takenAt - racyWindow } ?? false
        entries[name] = Entry(signature: signature, reading: reading, trusted: trusted)
    }

    /// The last reading of `name`, whatever its signature: for a folder nobody reported a
    /// change of since (inotify watches it).
    public func lastReading(of name: String) -> Reading? {
        entries[name]?.reading
    }

    /// Whether `name` was ever read.
    public func knows(_ name: String) -> Bool {
        entries[name] != nil
    }

    /// Drops every folder not in `present` (gone from the functions folder).
    public mutating func keepOnly(_ present: Set<String>) {
        guard entries.count != present.count || !entries.keys.allSatisfy(present.contains) else { return }
        entries = entries.filter { present.contains($0.key) }
    }

    public var count: Int { entries.count }
}
