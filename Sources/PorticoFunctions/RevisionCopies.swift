import Foundation
import Logging
import PorticoConfig

#if canImport(Glibc)
import Glibc
#endif

/// The private copy of a function's folder that each revision builds in and runs from.
///
/// A revision is named by the hash of its folder's content, and the folder is watched. If a
/// revision ran in the folder itself, whatever it wrote there (Python's `__pycache__`, a log,
/// a build's output) would change the hash and redeploy the function: once after the first
/// start for every Python function, on every write for a function that writes. So each
/// revision gets a copy of the folder, taken when it is deployed, and everything it (and its
/// `build`) writes lands in the copy. It also means that a revision's workers run the code the
/// revision was named after, even when the folder is edited while it still serves.
///
/// The copies live in `.portico-revisions/` inside the functions folder (hidden, so the scan
/// skips it; on the same file system as the functions, so compiled workers can run from it),
/// or in the temporary folder when the functions folder is read-only. Hidden entries are not
/// copied (the same rule as the revision hash, so the copy is exactly what was hashed): a
/// `build` starts from a clean tree, as an image build would.
final class RevisionCopies {
    let root: String
    private var serial = 0

    /// The folder under the functions folder that holds the copies.
    static let folderName = FunctionDeployFailure.folderName

    init(functionsDirectory: String, logger: Logger) {
        let shared = (functionsDirectory.hasSuffix("/") ? functionsDirectory : functionsDirectory + "/") + Self.folderName
        // A folder of this gateway's own: two gateways on one functions folder (a benchmark
        // beside a running one) must not remove each other's copies.
        let own = shared + "/" + Self.instancePrefix + String(getpid()) + "-" + String(UInt32.random(in: 0...UInt32.max), radix: 16)
        if (try? FileManager.default.createDirectory(atPath: own, withIntermediateDirectories: true)) != nil {
            root = own
            Self.removeCopiesOfDeadGateways(in: shared, except: own)
            return
        }
        // A read-only functions folder: a private folder with a name nobody could have made
        // beforehand (mkdtemp, mode 0700), not a guessable one in a shared /tmp.
        var template = Array((FileManager.default.temporaryDirectory.path + "/portico-revisions-XXXXXX").utf8CString)
        let made = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        root = made.map { String(cString: $0) } ?? FileManager.default.temporaryDirectory.path
        logger.warning("functions folder is not writable; revisions run from copies in \(root)")
    }

    /// Gateways' folders are named `gateway-PID-RANDOM`.
    private static let instancePrefix = "gateway-"

    /// Copies left by gateways that are no longer running belong to no running revision.
    private static func removeCopiesOfDeadGateways(in shared: String, except own: String) {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: shared) else { return }
        for entry in entries where entry.hasPrefix(instancePrefix) && shared + "/" + entry != own {
            guard let pid = pid_t(entry.dropFirst(instancePrefix.count).prefix { $0 != "-" }) else { continue }
            if kill(pid, 0) != 0 && errno == ESRCH {
                try? FileManager.default.removeItem(atPath: shared + "/" + entry)
            }
        }
    }

    /// Copies `source` (a function's folder) into a new folder and returns its path.
    func copy(_ source: String, name: String) throws -> String {
        serial += 1
        let destination = root + "/\(name)-\(serial)"
        try? FileManager.default.removeItem(atPath: destination)
        do {
            try copyTree(from: source, to: destination)
        } catch {
            try? FileManager.default.removeItem(atPath: destination)
            throw error
        }
        return destination
    }

    func remove(_ path: String) {
        guard path.hasPrefix(root + "/") else { return }
        try? FileManager.default.removeItem(atPath: path)
    }

    private func copyTree(from source: String, to destination: String) throws {
        let files = FileManager.default
        try files.createDirectory(atPath: destination, withIntermediateDirectories: false)
        for name in try files.contentsOfDirectory(atPath: source) where !name.hasPrefix(".") {
            let from = source + "/" + name
            let to = destination + "/" + name
            let attributes = try files.attributesOfItem(atPath: from)
            switch attributes[.type] as? FileAttributeType {
            case .typeDirectory?:
                try copyTree(from: from, to: to)
            case .typeRegular?:
                try files.copyItem(atPath: from, toPath: to)
                if let permissions = attributes[.posixPermissions] as? NSNumber {
                    try files.setAttributes([.posixPermissions: permissions], ofItemAtPath: to)
                }
            case .typeSymbolicLink?:
                try files.createSymbolicLink(atPath: to, withDestinationPath: try files.destinationOfSymbolicLink(atPath: from))
            default:
                continue  // sockets and FIFOs, as the revision hash skips them
            }
        }
    }
}
