/// A route's `requestHeaders` or `responseHeaders`: the Gateway API's RequestHeaderModifier
/// and ResponseHeaderModifier filters (Envoy's `request_headers_to_add` / `_to_remove` and
/// their response twins).
///
/// Names are lower-cased (header names are case-insensitive, and HTTP/2 sends them lower-case).
/// A name appears in at most one of the three lists, so the order they apply in never changes
/// the result; they apply as Envoy applies route headers, removals first.
public struct HeaderModifierConfig: Sendable, Equatable {
    public struct Header: Sendable, Equatable {
        public var name: String
        public var value: String

        public init(name: String, value: String) {
            self.name = name
            self.value = value
        }
    }

    /// Replaces every field of the name with one field of this value, or adds it.
    public var set: [Header]
    /// Adds one more field of the name, after those already there.
    public var add: [Header]
    /// Removes every field of the name.
    public var remove: [String]

    public init(set: [Header] = [], add: [Header] = [], remove: [String] = []) {
        self.set = set
        self.add = add
        self.remove = remove
    }

    public var isEmpty: Bool { self.set.isEmpty && add.isEmpty && remove.isEmpty }
}
