import NIOCore

/// Lookups by a name known only at run time (from the config: a route's header match, a
/// policy's header) and the edits a proxy makes to a head before it goes on.
///
/// An edit never rewrites the received bytes: a removal drops entries, an addition writes the
/// new bytes after the old ones. The first addition to a parsed head copies it once (its
/// storage is a slice of the received buffer); `reserveCapacity` makes that copy large enough
/// for the additions to come.
extension HTTPFieldList {
    /// The index of the first field named `name`, compared ignoring ASCII case.
    public func firstIndex(named name: String) -> Int? {
        var name = name
        return name.withUTF8 { wanted in
            self.firstIndex { HTTPFieldList.nameMatches($0, $1, wanted) }
        }
    }

    public func contains(named name: String) -> Bool {
        self.firstIndex(named: name) != nil
    }

    /// The value of the first field named `name`, made into a `String` now.
    public func firstValue(named name: String) -> String? {
        self.firstIndex(named: name).map { self[$0].value }
    }

    /// The values of every field named `name`, in order.
    public func values(named name: String) -> [String] {
        var name = name
        return name.withUTF8 { wanted in
            var values: [String] = []
            for index in self.entries.indices {
                let matches = self.storage.withUnsafeReadableBytes {
                    HTTPFieldList.nameMatches($0, self.entries[index], wanted)
                }
                if matches { values.append(self[index].value) }
            }
            return values
        }
    }

    /// Removes every field named `name`, compared ignoring ASCII case.
    public mutating func removeAll(named name: String) {
        var name = name
        name.withUTF8 { wanted in
            let storage = self.storage
            storage.withUnsafeReadableBytes { bytes in
                self.entries.removeAll { HTTPFieldList.nameMatches(bytes, $0, wanted) }
            }
        }
    }

    /// Removes every field for which `shouldRemove` is true.
    public mutating func removeAll(where shouldRemove: (HTTPField) -> Bool) {
        let storage = self.storage
        self.entries.removeAll { shouldRemove(HTTPField(storage: storage, entry: $0)) }
    }

    /// Replaces every field named `name` with one field at the end, as NIO's `replaceOrAdd`.
    public mutating func replaceOrAppend(name: String, value: String) {
        self.removeAll(named: name)
        self.append(name: name, value: value)
    }

    /// Makes room for `fields` more fields of about `bytes` bytes in all, so that adding them
    /// copies the list at most once.
    public mutating func reserveCapacity(fields: Int, bytes: Int) {
        self.entries.reserveCapacity(self.entries.count + fields)
        self.storage.reserveCapacity(minimumWritableBytes: bytes)
    }

    /// Bytes of the fields as HTTP/1 would carry them: names, values and separators.
    public var wireSize: Int {
        self.entries.withUnsafeBufferPointer { entries in
            var total = 0
            for index in 0..<entries.count {
                total &+= Int(entries[index].nameLength) &+ Int(entries[index].valueLength) &+ 4
            }
            return total
        }
    }

    static func nameMatches(_ bytes: UnsafeRawBufferPointer, _ entry: Entry, _ wanted: UnsafeBufferPointer<UInt8>) -> Bool {
        guard Int(entry.nameLength) == wanted.count else { return false }
        let start = Int(entry.nameStart)
        for index in 0..<wanted.count
        where HTTP1ByteClass.lowercased(bytes[start + index]) != HTTP1ByteClass.lowercased(wanted[index]) {
            return false
        }
        return true
    }
}

extension HTTPField {
    /// The name's length in bytes.
    public var nameLength: Int { Int(self.entry.nameLength) }

    /// The name in lowercase, as HTTP/2 writes names (RFC 9113 8.2.1); HTTP/1 peers often
    /// send `Content-Type`.
    public var lowercasedName: String {
        self.storage.withUnsafeReadableBytes { bytes in
            let start = Int(self.entry.nameStart)
            let name = UnsafeRawBufferPointer(rebasing: bytes[start..<start + Int(self.entry.nameLength)])
            var hasUppercase = false
            for index in 0..<name.count where name[index] &- UInt8(ascii: "A") < 26 {
                hasUppercase = true
                break
            }
            guard hasUppercase else { return String(decoding: name, as: UTF8.self) }
            return String(unsafeUninitializedCapacity: name.count) { buffer in
                for index in 0..<name.count { buffer[index] = HTTP1ByteClass.lowercased(name[index]) }
                return name.count
            }
        }
    }

    /// Calls `body` with the value's bytes, without making a view or a copy of them.
    public func withUnsafeValueBytes<Result>(_ body: (UnsafeRawBufferPointer) throws -> Result) rethrows -> Result {
        try self.withUnsafeBytes(start: self.entry.valueStart, length: self.entry.valueLength, body)
    }

    /// Calls `body` with the name's bytes, without making a view or a copy of them.
    public func withUnsafeNameBytes<Result>(_ body: (UnsafeRawBufferPointer) throws -> Result) rethrows -> Result {
        try self.withUnsafeBytes(start: self.entry.nameStart, length: self.entry.nameLength, body)
    }

    private func withUnsafeBytes<Result>(start: UInt32, length: UInt32,
                                         _ body: (UnsafeRawBufferPointer) throws -> Result) rethrows -> Result {
        try self.storage.withUnsafeReadableBytes { bytes in
            try body(UnsafeRawBufferPointer(rebasing: bytes[Int(start)..<Int(start) + Int(length)]))
        }
    }

    /// Whether the name has an `_` (which some backends read as `-`).
    public var nameHasUnderscore: Bool {
        self.storage.withUnsafeReadableBytes { bytes in
            let start = Int(self.entry.nameStart)
            for index in start..<start + Int(self.entry.nameLength) where bytes[index] == UInt8(ascii: "_") {
                return true
            }
            return false
        }
    }

    /// Whether the field is named `name`, compared ignoring ASCII case on both sides.
    public func hasName(matching name: String) -> Bool {
        var name = name
        return name.withUTF8 { wanted in
            self.storage.withUnsafeReadableBytes { HTTPFieldList.nameMatches($0, self.entry, wanted) }
        }
    }
}
