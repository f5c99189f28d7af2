import PorticoConfig
import PorticoHTTP1

/// A `HeaderModifierConfig` compiled into one list of edits, applied in place.
///
/// Built once per config snapshot; applying it builds no string: the names and values are the
/// config's, stored in the headers as they are. One array, so carrying it costs one retain.
struct HeaderEdits: Sendable {
    enum Edit: Sendable {
        case remove(String)
        case set(String, String)
        case add(String, String)
    }

    let edits: [Edit]

    /// Removals first, then sets, then adds, as Envoy applies route headers (remove before
    /// add). The config allows a name in only one list, so the order cannot change the result.
    init(_ config: HeaderModifierConfig) {
        edits = config.remove.map { .remove($0) } + config.set.map { .set($0.name, $0.value) }
            + config.add.map { .add($0.name, $0.value) }
    }

    /// Names compare ignoring ASCII case.
    func apply(to fields: inout HTTPFieldList) {
        for edit in edits {
            switch edit {
            case .remove(let name):
                if fields.contains(named: name) { fields.removeAll(named: name) }
            case .set(let name, let value):
                fields.replaceOrAppend(name: name, value: value)
            case .add(let name, let value):
                fields.append(name: name, value: value)
            }
        }
    }
}
