import Dispatch
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Tells which function folders changed in the functions folder.
///
/// inotify watches the folder and every visible folder inside each function folder, and names
/// the function whose tree an event touched; new folders are watched as they appear (before
/// they are read, so nothing written into them is missed). A slow poll runs regardless, because
/// inotify misses some changes (network file systems, some container mounts) and a missed
/// deploy is worse than a needless look; it asks for a look at everything, which the registry
/// answers with one `stat` per file (`FolderSignatureReader`), not by reading the files. It
/// runs every 5 s while inotify watches every folder, every 2 s when it cannot (no inotify, or
/// out of watches). Bursts of events (a folder being copied in) are folded into one call after
/// they settle.
///
/// `@unchecked Sendable`: its mutable fields are touched only on `queue` (a serial queue the
/// compiler cannot see); it is created elsewhere and then used only there.
final class FolderWatcher: @unchecked Sendable {
    enum Change: Sendable, Equatable {
        /// Look at every function folder (the poll; inotify lost events or is not there).
        case everything
        /// Look at these function folders (named as in the functions folder); the others did
        /// not change as far as inotify saw.
        case folders(Set<String>)
    }

    private let path: String
    private let queue: DispatchQueue
    private let onChange: @Sendable (Change) -> Void
    private var inotifyFD: Int32 = -1
    private var readSource: DispatchSourceRead?
    private var pollTimer: DispatchSourceTimer?
    private var pending: DispatchWorkItem?
    /// Each watch: the function folder whose tree it is in (nil for the functions folder
    /// itself) and its path.
    private var watches: [Int32: (function: String?, path: String)] = [:]
    private var rootWatch: Int32?
    /// Function folders with a watch on their top folder.
    private var watchedFunctions: Set<String> = []
    private var changed: Set<String> = []
    private var changedEverything = false
    private var buffer = [UInt8](repeating: 0, count: 64 * 1024)
    /// A folder inotify could not watch (out of watches, say): only the poll sees its changes.
    private var watchFailed = false
    private var pollEvery: DispatchTimeInterval?

    static let settleDelay: DispatchTimeInterval = .milliseconds(150)
    /// A look at everything costs one `stat` per file: about 20 ms for a thousand small
    /// functions on a virtual CPU, 0.4 % of a core at this interval.
    static let pollInterval: DispatchTimeInterval = .seconds(5)
    /// Without inotify the poll is all there is: as often as before it became cheap.
    static let pollIntervalWithoutInotify: DispatchTimeInterval = .seconds(2)
    private static let mask = UInt32(IN_CREATE | IN_DELETE | IN_MODIFY | IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM
                                     | IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF)

    init(path: String, queue: DispatchQueue, onChange: @escaping @Sendable (Change) -> Void) {
        self.path = path
        self.queue = queue
        self.onChange = onChange
    }

    func start() {
        queue.async { [self] in
            startInotify()
            let timer = DispatchSource.makeTimerSource(queue: queue)
            timer.setEventHandler { [weak self] in self?.poll() }
            pollTimer = timer
            schedulePoll()
            timer.resume()
        }
    }

    /// Whether inotify watches the folder and every function folder in it.
    private var inotifyWatchesAll: Bool { inotifyFD >= 0 && rootWatch != nil && !watchFailed }

    /// Sets the poll's interval from inotify's state, when that changed.
    private func schedulePoll() {
        let interval = inotifyWatchesAll ? Self.pollInterval : Self.pollIntervalWithoutInotify
        guard let pollTimer, interval != pollEvery else { return }
        pollEvery = interval
        pollTimer.schedule(deadline: .now() + interval, repeating: interval)
    }

    /// Stops watching; call on `queue`.
    func stopOnQueue() {
        dispatchPrecondition(condition: .onQueue(queue))
        pollTimer?.cancel()
        readSource?.cancel()
        pending?.cancel()
    }

    private func startInotify() {
        let fd = inotify_init1(Int32(IN_NONBLOCK | IN_CLOEXEC))
        guard fd >= 0 else { return }  // The poll still runs.
        inotifyFD = fd
        watchNewFolders()
        let source = DispatchSource.makeReadSource(fileDescriptor: fd, queue: queue)
        source.setEventHandler { [weak self] in self?.drainEvents() }
        source.setCancelHandler { close(fd) }
        source.resume()
        readSource = source
    }

    /// Watches the functions folder and every function folder not watched yet (one that
    /// appeared while inotify was not looking).
    private func watchNewFolders() {
        guard inotifyFD >= 0 else { return }
        if rootWatch == nil {
            let wd = inotify_add_watch(inotifyFD, path, Self.mask)
            guard wd >= 0 else { return }
            rootWatch = wd
            watches[wd] = (nil, path)
        }
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: path) else { return }
        for name in entries where !name.hasPrefix(".") && !watchedFunctions.contains(name) {
            watchTree(function: name, path: path + "/" + name)
        }
    }

    /// Watches `path` and every visible folder under it as part of `function`'s tree. A
    /// failure (not a folder, gone, out of watches) leaves that part to the poll.
    private func watchTree(function: String, path: String) {
        let wd = inotify_add_watch(inotifyFD, path, Self.mask | UInt32(IN_ONLYDIR))
        guard wd >= 0 else {
            // Not a folder, or gone already: nothing to watch. Anything else (ENOSPC: the
            // user's watches are used up) leaves the folder to the poll, which then runs often.
            if errno != ENOTDIR && errno != ENOENT { watchFailed = true }
            return
        }
        watches[wd] = (function, path)
        if path == self.path + "/" + function { watchedFunctions.insert(function) }
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: path) else { return }
        for name in entries where !name.hasPrefix(".") {
            var isDirectory: ObjCBool = false
            let child = path + "/" + name
            // Not through symbolic links: the hash does not follow them either.
            if (try? FileManager.default.destinationOfSymbolicLink(atPath: child)) == nil,
               FileManager.default.fileExists(atPath: child, isDirectory: &isDirectory), isDirectory.boolValue {
                watchTree(function: function, path: child)
            }
        }
    }

    private func drainEvents() {
        var events: [(wd: Int32, mask: UInt32, name: String)] = []
        while true {
            let count = buffer.withUnsafeMutableBytes { read(inotifyFD, $0.baseAddress, $0.count) }
            guard count > 0 else { break }
            buffer.withUnsafeBytes { bytes in
                var offset = 0
                let header = MemoryLayout<inotify_event>.size
                while offset + header <= count {
                    let wd = bytes.loadUnaligned(fromByteOffset: offset, as: Int32.self)
                    let mask = bytes.loadUnaligned(fromByteOffset: offset + 4, as: UInt32.self)
                    let length = Int(bytes.loadUnaligned(fromByteOffset: offset + 12, as: UInt32.self))
                    let nameBytes = UnsafeRawBufferPointer(rebasing: bytes[(offset + header)..<min(count, offset + header + length)])
                    let name = String(decoding: nameBytes.prefix { $0 != 0 }, as: UTF8.self)
                    events.append((wd, mask, name))
                    offset += header + length
                }
            }
        }
        for event in events { handle(event.wd, event.mask, event.name) }
        scheduleSettled()
    }

    private func handle(_ wd: Int32, _ mask: UInt32, _ name: String) {
        if mask & UInt32(IN_Q_OVERFLOW) != 0 {
            changedEverything = true
            return
        }
        guard let watch = watches[wd] else { return }
        if mask & UInt32(IN_IGNORED) != 0 {
            // The folder is gone (or was moved): its watch went with it.
            watches[wd] = nil
            if let function = watch.function, watch.path == path + "/" + function {
                watchedFunctions.remove(function)
            }
            if wd == rootWatch {
                rootWatch = nil
                changedEverything = true
            }
            return
        }
        let hidden = name.hasPrefix(".")
        let newFolder = mask & UInt32(IN_ISDIR) != 0 && mask & UInt32(IN_CREATE | IN_MOVED_TO) != 0 && !hidden
        guard let function = watch.function else {
            // An event in the functions folder itself: about the entry it names.
            if mask & UInt32(IN_DELETE_SELF | IN_MOVE_SELF) != 0 { changedEverything = true }
            guard !name.isEmpty, !hidden else { return }
            changed.insert(name)
            if newFolder { watchTree(function: name, path: path + "/" + name) }
            return
        }
        if mask & UInt32(IN_MOVE_SELF) != 0 && watch.path != path {
            // Moved away, it is no longer where its path says: drop the watch (IN_IGNORED follows).
            inotify_rm_watch(inotifyFD, wd)
        }
        if hidden { return }  // `.git`, an editor's swap file: not part of the function (nor of its hash)
        changed.insert(function)
        if newFolder { watchTree(function: function, path: watch.path + "/" + name) }
    }

    private func scheduleSettled() {
        pending?.cancel()
        let work = DispatchWorkItem { [weak self] in self?.fire() }
        pending = work
        queue.asyncAfter(deadline: .now() + Self.settleDelay, execute: work)
    }

    private func fire() {
        let change: Change = changedEverything ? .everything : .folders(changed)
        changed = []
        changedEverything = false
        if case .folders(let names) = change, names.isEmpty { return }
        onChange(change)
    }

    private func poll() {
        watchNewFolders()
        schedulePoll()
        // Changes inotify reported stay pending: their look comes after they settle, as always.
        onChange(.everything)
    }
}
