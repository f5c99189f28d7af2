import Foundation
import NIOConcurrencyHelpers

/// Files a TLS setting was loaded from, for noticing that they changed on disk (a rotated
/// certificate): their contents when loaded, and when the watcher last looked, so that one
/// change (a broken file among them) is reported once, not every second.
final class WatchedFiles: Sendable {
    let paths: [String]
    private let loaded: [Data?]
    private let seen: NIOLockedValueBox<[Data?]>

    init(_ paths: [String]) {
        self.paths = paths
        self.loaded = Self.read(paths)
        self.seen = NIOLockedValueBox(loaded)
    }

    /// Through symlinks, as a Kubernetes secret mount swaps them.
    private static func read(_ paths: [String]) -> [Data?] {
        paths.map { try? Data(contentsOf: URL(fileURLWithPath: $0).resolvingSymlinksInPath()) }
    }

    /// Whether the files differ from what was loaded.
    var changedSinceLoaded: Bool { Self.read(paths) != loaded }

    /// True once for each change since the last call.
    func takeChange() -> Bool {
        let current = Self.read(paths)
        return seen.withLockedValue { seen in
            guard seen != current else { return false }
            seen = current
            return true
        }
    }
}
