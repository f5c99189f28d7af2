/// Server names (exact, or a one-label wildcard such as `*.internal.example`) to values: the
/// services of a `tcp:` listener's `sni:` routes, a TLS listener's certificates.
///
/// An exact name wins over a wildcard; a wildcard covers exactly one label in front of its
/// domain, as in a certificate (see `ServerNamePattern`). Case and one trailing dot do not
/// matter. Two lookups in a dictionary, whatever the number of names.
public struct ServerNameTable<Value> {
    private var exact: [String: Value] = [:]
    /// By the domain after `*.`.
    private var wildcards: [String: Value] = [:]

    /// `names` are canonical patterns (lower-case, validated by the config reader); the first
    /// entry that lists a name keeps it.
    public init(_ entries: [(names: [String], value: Value)]) {
        for entry in entries {
            for name in entry.names {
                if name.hasPrefix("*.") {
                    let domain = String(name.dropFirst(2))
                    if wildcards[domain] == nil { wildcards[domain] = entry.value }
                } else if exact[name] == nil {
                    exact[name] = entry.value
                }
            }
        }
    }

    public var isEmpty: Bool { exact.isEmpty && wildcards.isEmpty }

    public func lookup(_ serverName: String) -> Value? {
        var name = serverName.lowercased()
        if name.hasSuffix(".") { name.removeLast() }
        if let value = exact[name] { return value }
        guard let dot = name.firstIndex(of: "."), dot != name.startIndex else { return nil }
        return wildcards[String(name[name.index(after: dot)...])]
    }
}

extension ServerNameTable: Sendable where Value: Sendable {}
