extension HeaderEdits {
    /// `set`, `add` and `remove` as lists of `name: value` (or names).
    var explainedConfig: [String: Explanation.Value] {
        var set: [String] = []
        var add: [String] = []
        var remove: [String] = []
        for edit in edits {
            switch edit {
            case .set(let name, let value): set.append("\(name): \(value)")
            case .add(let name, let value): add.append("\(name): \(value)")
            case .remove(let name): remove.append(name)
            }
        }
        var config: [String: Explanation.Value] = [:]
        if !set.isEmpty { config["set"] = .list(set) }
        if !add.isEmpty { config["add"] = .list(add) }
        if !remove.isEmpty { config["remove"] = .list(remove) }
        return config
    }

    var explainedSummary: String {
        edits.map { edit -> String in
            switch edit {
            case .set(let name, let value): return "set \(name): \(value)"
            case .add(let name, let value): return "add \(name): \(value)"
            case .remove(let name): return "remove \(name)"
            }
        }.joined(separator: "; ")
    }
}
