import Foundation
import Yams

/// Turns `gateway.yaml` into a validated `GatewayConfig`, or a `ConfigError` listing every problem.
///
/// Top-level keys: `listeners` (required), `admin`, `limits`, `accessLog`, `services`, `routes`.
/// The rules for each section live next to the code that reads it (`ConfigReader+*.swift`).
/// Every diagnostic names the file, the 1-based line and column (as editors count) and the
/// dotted key path, such as `routes[2].match.prefix`.
public enum ConfigLoader {
    /// Reads and parses the config file at `file` (a path, used as given in messages).
    ///
    /// - Throws: `ConfigError`; a missing or unreadable file is one diagnostic with key `(file)`
    ///   at line 1, column 1, so callers print every failure the same way.
    public static func load(file: String) throws -> GatewayConfig {
        let yaml: String
        do {
            yaml = try readText(file: file)
        } catch let message as FileProblem {
            throw ConfigError([ConfigDiagnostic(
                location: SourceLocation(file: file, line: 1, column: 1), key: "(file)", message: message.text)])
        }
        return try parse(yaml: yaml, file: file)
    }

    /// Parses config text; `file` only names the source in messages and in `sourceFile`.
    ///
    /// - Throws: `ConfigError` with every diagnostic found, sorted by position in the file.
    public static func parse(yaml: String, file: String) throws -> GatewayConfig {
        let reader = ConfigReader(file: file)
        let root: Node?
        do {
            root = try Yams.compose(yaml: yaml)
        } catch {
            // libyaml stops at the first syntax error, so this is the one case with a single
            // diagnostic: nothing after it can be trusted to mean what it looks like.
            throw ConfigError([yamlDiagnostic(error, yaml: yaml, file: file)])
        }
        let config = reader.gatewayConfig(from: root)
        guard let config, !reader.hasErrors else {
            throw ConfigError(sortedByPosition(reader.diagnostics))
        }
        return config
    }

    /// Sections are read in dependency order (services before routes), not file order, so
    /// sorting puts the messages back in the order a user reads the file.
    static func sortedByPosition(_ diagnostics: [ConfigDiagnostic]) -> [ConfigDiagnostic] {
        diagnostics.enumerated().sorted { a, b in
            let la = a.element.location, lb = b.element.location
            if la.line != lb.line { return la.line < lb.line }
            if la.column != lb.column { return la.column < lb.column }
            return a.offset < b.offset
        }.map(\.element)
    }

    // MARK: File reading

    /// Why a file could not be read, worded for a `(file)` diagnostic; `function.yaml` reads the same way.
    struct FileProblem: Error {
        var text: String
    }

    static func readText(file: String) throws -> String {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: file, isDirectory: &isDirectory) else {
            throw FileProblem(text: "no such file")
        }
        guard !isDirectory.boolValue else {
            throw FileProblem(text: "is a directory, expected a YAML file")
        }
        guard let data = FileManager.default.contents(atPath: file) else {
            throw FileProblem(text: "cannot read the file (check its permissions)")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw FileProblem(text: "is not UTF-8 text")
        }
        return text
    }

    // MARK: YAML syntax errors

    static func yamlDiagnostic(_ error: Error, yaml: String, file: String) -> ConfigDiagnostic {
        func diagnostic(_ line: Int, _ column: Int, _ message: String) -> ConfigDiagnostic {
            ConfigDiagnostic(location: SourceLocation(file: file, line: line, column: column),
                             key: "(yaml)", message: message)
        }
        guard let yamlError = error as? YamlError else {
            return diagnostic(1, 1, "\(error)")
        }
        switch yamlError {
        case .scanner(let context, let problem, let mark, _),
             .parser(let context, let problem, let mark, _),
             .composer(let context, let problem, let mark, _):
            // libyaml's context ("while parsing a block mapping") says where it started looking;
            // the problem and its mark say what is wrong and where, which is what a user fixes.
            let contextText = context.map { " (\($0.text) at line \($0.mark.line), column \($0.mark.column))" } ?? ""
            return diagnostic(mark.line, mark.column, "\(problem)\(contextText)")
        case .reader(let problem, let offset, _, _):
            let (line, column) = offset.map { lineAndColumn(ofCharacterOffset: $0, in: yaml) } ?? (1, 1)
            return diagnostic(line, column, problem)
        case .duplicatedKeysInMapping(let duplicates, let context):
            let names = duplicates.map { "'\($0)'" }.joined(separator: ", ")
            let noun = duplicates.count == 1 ? "key" : "keys"
            return diagnostic(context.mark.line, context.mark.column,
                              "duplicate \(noun) \(names) in one mapping; each key may appear once")
        default:
            return diagnostic(1, 1, "\(yamlError)")
        }
    }

    private static func lineAndColumn(ofCharacterOffset offset: Int, in text: String) -> (Int, Int) {
        var line = 1, column = 1
        for character in text.prefix(offset) {
            if character == "\n" || character == "\r\n" {
                line += 1
                column = 1
            } else {
                column += 1
            }
        }
        return (line, column)
    }
}
