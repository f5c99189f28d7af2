import Foundation
import Yams

/// Turns a function folder's `function.yaml` into a validated `FunctionManifest`, or a
/// `ConfigError` listing every problem, printed the same way as `gateway.yaml` errors.
///
/// Keys: `command` (required), `build`, `buildTimeout`, `mode`, `routes`, `env`, `concurrency`, `minWorkers`,
/// `maxWorkers`, `idleTimeout`, `startupTimeout`, `requestTimeout`, `queueLimit`, `queueBodyLimit`, `gracePeriod`,
/// `limits`, `readiness`; the rules live in `ConfigReader+FunctionManifest.swift`.
public enum FunctionManifestLoader {
    public static let fileName = "function.yaml"

    /// Reads `<directory>/function.yaml`; the function is named after the folder's last path
    /// component, which must be a valid function name (see `FunctionManifest.isValidName`).
    ///
    /// - Throws: `ConfigError`; a missing or unreadable file is one diagnostic with key `(file)`.
    public static func load(directory: String) throws -> FunctionManifest {
        try load(directory: directory, name: functionName(ofDirectory: directory))
    }

    /// Reads `<directory>/function.yaml` as function `name`, for a folder not named after its
    /// function (a revision's private copy).
    public static func load(directory: String, name: String) throws -> FunctionManifest {
        let file = manifestPath(in: directory)
        let yaml: String
        do {
            yaml = try ConfigLoader.readText(file: file)
        } catch let problem as ConfigLoader.FileProblem {
            throw ConfigError([ConfigDiagnostic(
                location: SourceLocation(file: file, line: 1, column: 1), key: "(file)", message: problem.text)])
        }
        return try parse(yaml: yaml, file: file, name: name, directory: directory)
    }

    /// Parses manifest text; `file` only names the source in messages, `name` and `directory`
    /// are stored in the manifest as given (after `name` is checked).
    ///
    /// - Throws: `ConfigError` with every diagnostic found, sorted by position in the file.
    public static func parse(yaml: String, file: String, name: String, directory: String) throws -> FunctionManifest {
        let reader = ConfigReader(file: file)
        let root: Node?
        do {
            root = try Yams.compose(yaml: yaml)
        } catch {
            // Nothing after a syntax error can be trusted, but a bad folder name is independent
            // of the text and still worth saying in the same run.
            reader.checkFunctionName(name)
            throw ConfigError(ConfigLoader.sortedByPosition(
                reader.diagnostics + [ConfigLoader.yamlDiagnostic(error, yaml: yaml, file: file)]))
        }
        let manifest = reader.functionManifest(from: root, name: name, directory: directory)
        guard let manifest, !reader.hasErrors else {
            throw ConfigError(ConfigLoader.sortedByPosition(reader.diagnostics))
        }
        return manifest
    }

    public static func manifestPath(in directory: String) -> String {
        directory.hasSuffix("/") ? directory + fileName : directory + "/" + fileName
    }

    /// The folder's own name, worked out from the path's text alone: `hello/`, `./hello` and, run
    /// from inside it, `.` all give `hello`. Symbolic links are deliberately not resolved, so a
    /// link `functions/hello -> /srv/hello-v2` names the function `hello`.
    static func functionName(ofDirectory directory: String) -> String {
        var components = directory.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
        if !directory.hasPrefix("/") {
            components = FileManager.default.currentDirectoryPath.split(separator: "/").map(String.init) + components
        }
        var resolved: [String] = []
        for component in components {
            switch component {
            case ".": continue
            case "..": _ = resolved.popLast()
            default: resolved.append(component)
            }
        }
        return resolved.last ?? "/"
    }
}
