import Yams

/// Walks the YAML node tree of one config file and turns type mistakes into diagnostics.
///
/// Every reader method reports a problem and returns nil instead of throwing, so one pass over
/// the file finds every error: a user fixing a config wants the whole list, not one per run.
/// Section parsing (`ConfigReader+Listeners.swift` and siblings) builds on these methods.
final class ConfigReader {
    let file: String
    private(set) var diagnostics: [ConfigDiagnostic] = []

    init(file: String) {
        self.file = file
    }

    var hasErrors: Bool { diagnostics.contains { $0.severity == .error } }

    // MARK: Reporting

    func location(of node: Node?) -> SourceLocation {
        // Yams marks are already 1-based, as editors count; a node without a mark only comes
        // from a document with no content, whose natural place is the top of the file.
        let mark = node?.mark
        return SourceLocation(file: file, line: mark?.line ?? 1, column: mark?.column ?? 1)
    }

    func error(_ message: String, at node: Node?, key: String) {
        diagnostics.append(ConfigDiagnostic(location: location(of: node), key: key, message: message))
    }

    // MARK: Key paths

    static func path(_ parent: String, _ key: String) -> String {
        parent.isEmpty ? key : "\(parent).\(key)"
    }

    static func path(_ parent: String, index: Int) -> String {
        "\(parent)[\(index)]"
    }

    // MARK: Structure

    /// The keys of one YAML mapping, after checking them against the schema.
    struct Fields {
        /// Dotted path of the mapping itself.
        let path: String
        /// The mapping node, for "missing key" messages that point at its start.
        let node: Node
        /// Entries in file order, each with its key node for messages about the key itself.
        let entries: [(name: String, key: Node, value: Node)]

        subscript(name: String) -> Node? {
            entries.first { $0.name == name }?.value
        }

        func keyNode(_ name: String) -> Node? {
            entries.first { $0.name == name }?.key
        }

        func path(_ name: String) -> String {
            ConfigReader.path(path, name)
        }

        func has(_ name: String) -> Bool {
            self[name] != nil
        }
    }

    /// Reads `node` as a mapping whose keys must come from `allowed`; unknown keys are reported
    /// (with a did-you-mean when one is close) and left out of the result.
    func fields(_ node: Node, key: String, allowed: [String]) -> Fields? {
        guard case .mapping(let mapping) = node else {
            error("expected a mapping with keys \(Self.list(allowed))\(Self.got(node))", at: node, key: key.isEmpty ? "(root)" : key)
            return nil
        }
        var entries: [(name: String, key: Node, value: Node)] = []
        for (keyNode, valueNode) in mapping {
            guard case .scalar(let scalar) = keyNode else {
                error("expected a plain key such as \(Self.quoted(allowed.first ?? "name"))", at: keyNode, key: key)
                continue
            }
            let name = scalar.string
            guard allowed.contains(name) else {
                var message = "unknown key '\(name)'"
                if let suggestion = KeySuggestion.closest(to: name, among: allowed) {
                    message += " (did you mean '\(suggestion)'?)"
                } else if allowed.count == 1 {
                    message += " (the only key here is '\(allowed[0])')"
                } else {
                    message += " (expected one of \(Self.list(allowed)))"
                }
                error(message, at: keyNode, key: Self.path(key, name))
                continue
            }
            entries.append((name, keyNode, valueNode))
        }
        return Fields(path: key, node: node, entries: entries)
    }

    /// Reads `node` as a mapping whose keys are names chosen by the user (services, headers).
    func namedEntries(_ node: Node, key: String, what: String) -> [(name: String, key: Node, value: Node)]? {
        guard case .mapping(let mapping) = node else {
            error("expected a mapping of \(what) by name\(Self.got(node))", at: node, key: key)
            return nil
        }
        var entries: [(name: String, key: Node, value: Node)] = []
        for (keyNode, valueNode) in mapping {
            guard case .scalar(let scalar) = keyNode, !scalar.string.isEmpty else {
                error("expected a \(what) name", at: keyNode, key: key)
                continue
            }
            entries.append((scalar.string, keyNode, valueNode))
        }
        return entries
    }

    func sequence(_ node: Node, key: String, of what: String) -> [Node]? {
        guard case .sequence(let sequence) = node else {
            error("expected a list of \(what)\(Self.got(node))", at: node, key: key)
            return nil
        }
        return Array(sequence)
    }

    /// Reports a required key that is absent, pointing at the mapping that should hold it.
    func requireKey(_ name: String, in fields: Fields, message: String? = nil) {
        error(message ?? "missing required key '\(name)'", at: fields.node, key: fields.path(name))
    }

    // MARK: Scalars

    /// Any non-null scalar as written: YAML 1.1 would turn `off` or `true` into booleans, but
    /// `format: off` and a header value `true` are meant as text.
    func string(_ node: Node, key: String, what: String = "a string") -> String? {
        guard case .scalar(let scalar) = node, !isNull(node) else {
            error("expected \(what)\(Self.got(node))", at: node, key: key)
            return nil
        }
        return scalar.string
    }

    /// A decimal integer in `range`; YAML 1.1's octal (`010`) and base-60 (`1:30`) forms are
    /// refused because nobody writing a status code or a weight means them.
    func int(_ node: Node, key: String, in range: ClosedRange<Int>, rangeMessage: String) -> Int? {
        guard case .scalar(let scalar) = node,
              let value = Self.decimalInt(scalar.string) else {
            error("expected a whole number\(Self.got(node))", at: node, key: key)
            return nil
        }
        guard range.contains(value) else {
            error("\(rangeMessage), got \(value)", at: node, key: key)
            return nil
        }
        return value
    }

    func bool(_ node: Node, key: String) -> Bool? {
        guard case .scalar(let scalar) = node, scalar.style == .plain || scalar.style == .any,
              Self.hasTag(node, .bool), let value = node.bool else {
            error("expected true or false\(Self.got(node))", at: node, key: key)
            return nil
        }
        return value
    }

    /// A positive duration unless `allowZero`; a bare number is refused (see `ConfigDuration.parse`).
    func duration(_ node: Node, key: String, allowZero: Bool = false) -> ConfigDuration? {
        guard case .scalar(let scalar) = node, let value = ConfigDuration.parse(scalar.string) else {
            error("expected a duration like 250ms, 2s, 1m\(Self.got(node))", at: node, key: key)
            return nil
        }
        if !allowZero && value.nanoseconds == 0 {
            error("must be longer than 0s", at: node, key: key)
            return nil
        }
        return value
    }

    func size(_ node: Node, key: String) -> Int? {
        guard case .scalar(let scalar) = node, let value = ConfigSize.parse(scalar.string) else {
            error("expected a size like 512KiB, 10MiB, 1GB or a number of bytes\(Self.got(node))", at: node, key: key)
            return nil
        }
        guard value > 0 else {
            error("must be larger than 0 bytes", at: node, key: key)
            return nil
        }
        return value
    }

    func hostPort(_ node: Node, key: String, allowPortZero: Bool = false) -> HostPort? {
        let portRange = allowPortZero ? "0-65535" : "1-65535"
        guard case .scalar(let scalar) = node, !isNull(node),
              let value = HostPort.parse(scalar.string, allowPortZero: allowPortZero) else {
            error("expected an address like 127.0.0.1:8080, localhost:80 or \"[::1]:8443\" (port \(portRange))\(Self.got(node))",
                  at: node, key: key)
            return nil
        }
        return value
    }

    /// One of a fixed set of words, such as a load balancer kind.
    func choice<T>(_ node: Node, key: String, _ options: [(String, T)]) -> T? {
        let names = options.map(\.0)
        guard case .scalar(let scalar) = node, let match = options.first(where: { $0.0 == scalar.string }) else {
            var message = "expected one of \(Self.list(names))\(Self.got(node))"
            if case .scalar(let scalar) = node, let suggestion = KeySuggestion.closest(to: scalar.string, among: names) {
                message += " (did you mean '\(suggestion)'?)"
            }
            error(message, at: node, key: key)
            return nil
        }
        return match.1
    }

    func isNull(_ node: Node) -> Bool {
        guard case .scalar(let scalar) = node else { return false }
        return scalar.style != .singleQuoted && scalar.style != .doubleQuoted && Self.hasTag(node, .null)
    }

    /// The type YAML resolved a scalar to (Yams keeps `Tag.name` internal; `rawValue` is public).
    static func hasTag(_ node: Node, _ name: Tag.Name) -> Bool {
        node.tag.rawValue == name.rawValue
    }

    // MARK: Message helpers

    static func decimalInt(_ s: String) -> Int? {
        let digits = s.hasPrefix("-") ? s.dropFirst() : Substring(s)
        guard !digits.isEmpty, digits.count <= 18, digits.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
        return Int(s)
    }

    /// `, got 'x'` for scalars and `, got a list` for collections, so a message shows what the
    /// file actually holds.
    static func got(_ node: Node) -> String {
        switch node {
        case .scalar(let scalar):
            if scalar.style != .singleQuoted && scalar.style != .doubleQuoted && Self.hasTag(node, .null) {
                return ", got nothing"
            }
            return ", got '\(scalar.string)'"
        case .mapping: return ", got a mapping"
        case .sequence: return ", got a list"
        case .alias: return ""
        }
    }

    static func quoted(_ s: String) -> String { "'\(s)'" }

    static func list(_ names: [String]) -> String {
        names.joined(separator: ", ")
    }
}
