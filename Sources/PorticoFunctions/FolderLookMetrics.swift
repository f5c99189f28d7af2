import Prometheus

/// How much work keeping up with the functions folder costs, in the gateway's metrics: looks
/// at the folder (all of it, or the folders inotify named) and function folders read in full
/// (manifest loaded, every byte hashed). With nothing changing, the second stays still.
///
/// Used only on the registry's queue (`hashedSinceTrim` is not locked).
final class FolderLookMetrics {
    private let looksAtAll: Counter
    private let looksAtChanged: Counter
    private let foldersHashed: Counter
    /// Folders read since the heap was last trimmed.
    var hashedSinceTrim = 0

    init(registry: PrometheusCollectorRegistry) {
        func looks(_ scope: String) -> Counter {
            registry.makeCounter(
                descriptor: .init(metricName: "portico_function_folder_looks", unitName: "total",
                                  helpText: "Looks at the functions folder: at every function folder (start, poll) "
                                      + "or at those inotify named."),
                labels: [("scope", scope)])
        }
        looksAtAll = looks("all")
        looksAtChanged = looks("changed")
        foldersHashed = registry.makeCounter(
            descriptor: .init(metricName: "portico_function_folders_hashed", unitName: "total",
                              helpText: "Function folders read in full (manifest loaded, content hashed) because "
                                  + "their stat signature changed."))
    }

    func count(_ change: FolderWatcher.Change) {
        switch change {
        case .everything: looksAtAll.increment()
        case .folders: looksAtChanged.increment()
        }
    }

    func hashed() {
        foldersHashed.increment()
        hashedSinceTrim += 1
    }
}
