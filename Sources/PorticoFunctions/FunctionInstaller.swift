import CPorticoSpawn
import Foundation
import PorticoConfig

#if canImport(Glibc)
import Glibc
#endif

/// `portico deploy`: installs a function folder so the watcher never sees half of it.
///
/// The folder is copied beside its destination under a hidden name (the scan skips hidden
/// folders), then moved into place with one rename; a function already there is swapped out
/// with `renameat2(RENAME_EXCHANGE)`, so the name never disappears, even for a moment.
public enum FunctionInstaller {
    public enum InstallError: Error, CustomStringConvertible {
        case invalid(ConfigError)
        case io(String)

        public var description: String {
            switch self {
            case .invalid(let error): return error.description
            case .io(let message): return message
            }
        }
    }

    /// Validates `source` as function `name`, then installs it as `functionsDirectory/name`.
    /// Returns the installed path.
    @discardableResult
    public static func install(source: String, name: String, functionsDirectory: String) throws -> String {
        let files = FileManager.default
        let manifestPath = source + "/" + FunctionManifestLoader.fileName
        guard let yaml = try? String(contentsOfFile: manifestPath, encoding: .utf8) else {
            throw InstallError.io("\(manifestPath): cannot read the function manifest")
        }
        do {
            _ = try FunctionManifestLoader.parse(yaml: yaml, file: manifestPath, name: name, directory: source)
        } catch let error as ConfigError {
            throw InstallError.invalid(error)
        }

        try files.createDirectory(atPath: functionsDirectory, withIntermediateDirectories: true)
        let destination = functionsDirectory + "/" + name
        let staging = functionsDirectory + "/.deploy-\(name)-\(UUID().uuidString.prefix(8))"
        do {
            try files.copyItem(atPath: source, toPath: staging)
        } catch {
            try? files.removeItem(atPath: staging)
            throw InstallError.io("cannot copy \(source): \(error)")
        }
        if files.fileExists(atPath: destination) {
            let code = portico_rename_exchange(staging, destination)
            guard code == 0 else {
                try? files.removeItem(atPath: staging)
                throw InstallError.io("cannot swap in \(destination): \(String(cString: strerror(code)))")
            }
            // `staging` now holds the previous version, still hidden from the scan.
            try? files.removeItem(atPath: staging)
        } else {
            guard rename(staging, destination) == 0 else {
                let message = String(cString: strerror(errno))
                try? files.removeItem(atPath: staging)
                throw InstallError.io("cannot move into \(destination): \(message)")
            }
        }
        return destination
    }
}
