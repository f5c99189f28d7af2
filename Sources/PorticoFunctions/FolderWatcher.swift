import Dispatch
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Calls `onChange` when anything in a folder or its immediate subfolders changes.
///
/// inotify tells at once where the kernel offers it; a slow poll runs regardless, because
/// inotify misses some changes (network file systems, some container mounts) and a missed
/// deploy is worse than a needless rescan. Bursts of events (a folder being copied in) are
/// folded into one call after they settle.
///
/// `@unchecked Sendable`: its mutable fields are touched only on `queue` (a serial queue the
/// compiler cannot see); it is created elsewhere and then used only there.
final class FolderWatcher: @unchecked Sendable {
    private let path: String
    private let queue: DispatchQueue
    private let onChange: @Sendable () -> Void
    private var inotifyFD: Int32 = -1
    private var readSource: DispatchSourceRead?
    private var pollTimer: DispatchSourceTimer?
    private var pending: DispatchWorkItem?
    private var watchedFolders: Set<String> = []

    static let settleDelay: DispatchTimeInterval = .milliseconds(150)
    static let pollInterval: DispatchTimeInterval = .seconds(2)

    init(path: String, queue: DispatchQueue, onChange: @escaping @Sendable () -> Void) {
        self.path = path
        self.queue = queue
        self.onChange = onChange
    }

    func start() {
        queue.async { [self] in
            startInotify()
            let timer = DispatchSource.makeTimerSource(queue: queue)
            timer.schedule(deadline: .now() + Self.pollInterval, repeating: Self.pollInterval)
            timer.setEventHandler { [weak self] in self?.fire() }
            timer.resume()
            pollTimer = timer
        }
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
        watchFolders()
        let source = DispatchSource.makeReadSource(fileDescriptor: fd, queue: queue)
        source.setEventHandler { [weak self] in self?.drainEvents() }
        source.setCancelHandler { close(fd) }
        source.resume()
        readSource = source
    }

    /// Watches the folder and each function folder in it; new folders are picked up as they appear.
    private func watchFolders() {
        guard inotifyFD >= 0 else { return }
        let mask = UInt32(IN_CREATE | IN_DELETE | IN_MODIFY | IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_ATTRIB
                          | IN_DELETE_SELF | IN_MOVE_SELF)
        var folders = [path]
        if let entries = try? FileManager.default.contentsOfDirectory(atPath: path) {
            for entry in entries where !entry.hasPrefix(".") {
                var isDirectory: ObjCBool = false
                let full = path + "/" + entry
                if FileManager.default.fileExists(atPath: full, isDirectory: &isDirectory), isDirectory.boolValue {
                    folders.append(full)
                }
            }
        }
        for folder in folders where !watchedFolders.contains(folder) {
            if inotify_add_watch(inotifyFD, folder, mask) >= 0 { watchedFolders.insert(folder) }
        }
        watchedFolders = watchedFolders.filter { FileManager.default.fileExists(atPath: $0) }
    }

    private func drainEvents() {
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while read(inotifyFD, &buffer, buffer.count) > 0 {}
        scheduleSettled()
    }

    private func scheduleSettled() {
        pending?.cancel()
        let work = DispatchWorkItem { [weak self] in self?.fire() }
        pending = work
        queue.asyncAfter(deadline: .now() + Self.settleDelay, execute: work)
    }

    private func fire() {
        watchFolders()
        onChange()
    }
}
