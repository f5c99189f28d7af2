import Foundation

/// Discovers the functions in the functions folder: one per immediate subfolder holding a
/// `function.yaml`.
public enum FunctionDirectory {
    /// Loads every function under `path`, sorted by name; one broken manifest never hides the others.
    ///
    /// Subfolders whose names start with `.` are skipped: `portico deploy` copies a function into
    /// a hidden staging folder and renames it into place, so a half-copied function is never
    /// read. Subfolders without a `function.yaml` are not functions and are skipped too. A
    /// missing (or unreadable) `path` is an empty scan: a gateway with no functions yet is normal.
    public static func scan(_ path: String) -> FunctionScan {
        var scan = FunctionScan()
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: path) else { return scan }
        for name in entries.sorted() where !name.hasPrefix(".") {
            let directory = path.hasSuffix("/") ? path + name : path + "/" + name
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue,
                  FileManager.default.fileExists(atPath: FunctionManifestLoader.manifestPath(in: directory)) else { continue }
            do {
                scan.manifests.append(try FunctionManifestLoader.load(directory: directory))
            } catch let error as ConfigError {
                scan.failures[name] = error
            } catch {
                // `load` throws only `ConfigError`; this keeps the promise of a total scan if that changes.
                scan.failures[name] = ConfigError([ConfigDiagnostic(
                    location: SourceLocation(file: FunctionManifestLoader.manifestPath(in: directory), line: 1, column: 1),
                    key: "(file)", message: "\(error)")])
            }
        }
        return scan
    }
}
