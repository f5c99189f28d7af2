#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import NIOCore

/// An ordered list of HTTP fields (headers or trailers) kept as offsets into one buffer.
///
/// The HTTP/1 parsers build it over the received head without copying: `storage` is a slice of
/// the bytes that came off the socket and each field is four integers into it. Names are
/// compared with lowercase `StaticString`s byte by byte, so asking "is there a `host`?" allocates
/// nothing; a `String` exists only when a caller asks for one. HTTP/2 (whose names arrive
/// decoded by HPACK) builds the same list from (name, value) pairs, so the layers above see
/// one model for both protocols.
///
/// Values are stored without their leading and trailing whitespace. The list does not validate
/// what is appended to it: the parsers validate what they record, and a caller appending
/// pairs from elsewhere checks them with `HTTPFieldList.isValidName`/`isValidValue`.
public struct HTTPFieldList: Sendable {
    /// Where one field's name and value sit in `storage`, as offsets from its reader index.
    @usableFromInline
    struct Entry: Sendable, Hashable {
        @usableFromInline var nameStart: UInt32
        @usableFromInline var nameLength: UInt32
        @usableFromInline var valueStart: UInt32
        @usableFromInline var valueLength: UInt32
    }

    /// The bytes the entries point into. For a parsed head this is the whole head, start line
    /// included; only the ranges named by entries are field bytes.
    public internal(set) var storage: ByteBuffer
    @usableFromInline var entries: [Entry]
    /// Whether a field was appended that cannot be written on an HTTP/1 line as it is. Fields
    /// a parser recorded always can, so `isSendable` scans the bytes only when this is set
    /// (it stays set if that field is removed again: the scan then finds nothing).
    private var mayHoldUnsendable = false

    /// An empty list.
    public init() {
        self.storage = ByteBuffer()
        self.entries = []
    }

    /// A list over bytes some parser has validated.
    init(storage: ByteBuffer, entries: [Entry]) {
        self.storage = storage
        self.entries = entries
    }

    /// A list built from (name, value) pairs, in their order, as HTTP/2 delivers them.
    public init(_ pairs: some Sequence<(String, String)>) {
        self.init()
        for (name, value) in pairs {
            self.append(name: name, value: value)
        }
    }

    /// Appends a field at the end. The bytes are copied into `storage` once.
    public mutating func append(name: String, value: String) {
        var name = name
        var value = value
        name.withUTF8 { nameBytes in
            value.withUTF8 { valueBytes in
                self.append(name: UnsafeRawBufferPointer(nameBytes), value: UnsafeRawBufferPointer(valueBytes))
            }
        }
    }

    /// Appends a field whose name and value are given as bytes.
    public mutating func append(name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) {
        // Checked here, on the few bytes appended, rather than over every field each time the
        // list is written.
        if !self.mayHoldUnsendable && !HTTPFieldList.isSendable(name, value) { self.mayHoldUnsendable = true }
        let base = self.storage.readerIndex
        let nameStart = self.storage.writerIndex - base
        self.storage.writeBytes(name)
        let valueStart = self.storage.writerIndex - base
        self.storage.writeBytes(value)
        self.entries.append(
            Entry(
                nameStart: UInt32(nameStart),
                nameLength: UInt32(name.count),
                valueStart: UInt32(valueStart),
                valueLength: UInt32(value.count)
            )
        )
    }

    /// The number of fields.
    @inlinable
    public var count: Int { self.entries.count }

    @inlinable
    public var isEmpty: Bool { self.entries.isEmpty }

    /// The field at `index` (0 ..< count), as a view into `storage`.
    public subscript(index: Int) -> HTTPField {
        HTTPField(storage: self.storage, entry: self.entries[index])
    }

    /// The index of the first field named `name`, compared ignoring ASCII case.
    /// - Parameter name: the name in lowercase, as HTTP/2 writes it.
    public func firstIndex(of name: StaticString) -> Int? {
        self.firstIndex { HTTPFieldList.nameMatches($0, $1, name) }
    }

    /// The index of the first entry `matches` accepts, given the storage's bytes.
    ///
    /// The loops over entries and bytes here and below are plain loops over buffer pointers:
    /// `Array.firstIndex(where:)` or a `for` over the array is generic code, and unspecialized
    /// (in a debug build, where the allocation test counts) it allocates on every element.
    func firstIndex(where matches: (UnsafeRawBufferPointer, Entry) -> Bool) -> Int? {
        self.storage.withUnsafeReadableBytes { bytes in
            self.entries.withUnsafeBufferPointer { entries in
                for index in 0..<entries.count where matches(bytes, entries[index]) {
                    return index
                }
                return nil
            }
        }
    }

    /// Whether a field named `name` (lowercase) is present.
    public func contains(_ name: StaticString) -> Bool {
        self.firstIndex(of: name) != nil
    }

    /// How many fields are named `name` (lowercase).
    public func count(of name: StaticString) -> Int {
        self.storage.withUnsafeReadableBytes { bytes in
            self.entries.withUnsafeBufferPointer { entries in
                var count = 0
                for index in 0..<entries.count where HTTPFieldList.nameMatches(bytes, entries[index], name) {
                    count += 1
                }
                return count
            }
        }
    }

    /// The value of the first field named `name` (lowercase), made into a `String` now.
    public func firstValue(of name: StaticString) -> String? {
        self.firstIndex(of: name).map { self[$0].value }
    }

    /// The values of every field named `name` (lowercase), in order.
    public func values(of name: StaticString) -> [String] {
        var values: [String] = []
        for index in self.entries.indices where self[index].hasName(name) {
            values.append(self[index].value)
        }
        return values
    }

    /// Whether a field named `name` (lowercase) holds `token` in its comma-separated list,
    /// compared ignoring ASCII case (for `Connection: close`, `Connection: upgrade`...).
    public func containsToken(_ token: StaticString, inFieldNamed name: StaticString) -> Bool {
        self.firstIndex { bytes, entry in
            guard HTTPFieldList.nameMatches(bytes, entry, name) else { return false }
            let value = UnsafeRawBufferPointer(
                rebasing: bytes[Int(entry.valueStart)..<Int(entry.valueStart + entry.valueLength)]
            )
            return HTTPFieldList.listContains(value, token)
        } != nil
    }

    /// Removes every field named `name` (lowercase). The bytes stay in `storage`, unreferenced.
    public mutating func removeAll(named name: StaticString) {
        let storage = self.storage
        storage.withUnsafeReadableBytes { bytes in
            self.entries.removeAll { HTTPFieldList.nameMatches(bytes, $0, name) }
        }
    }

    /// Writes the fields as HTTP/1 field lines, `name: value\r\n` each.
    public func write(to buffer: inout ByteBuffer) {
        // One reservation and plain copies: four `ByteBuffer` writes per field (each with its
        // uniqueness and exclusivity checks, and NIO's generic path for a static string) were
        // about 1 % of a proxied request's CPU.
        let total = self.wireSize
        guard total > 0 else { return }
        self.storage.withUnsafeReadableBytes { bytes in
            self.entries.withUnsafeBufferPointer { entries in
                _ = buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: total) { out in
                    let base = out.baseAddress!
                    var at = 0
                    for index in 0..<entries.count {
                        let entry = entries[index]
                        let nameLength = Int(entry.nameLength)
                        let valueLength = Int(entry.valueLength)
                        (base + at).copyMemory(from: bytes.baseAddress! + Int(entry.nameStart), byteCount: nameLength)
                        at += nameLength
                        base.storeBytes(of: UInt8(ascii: ":"), toByteOffset: at, as: UInt8.self)
                        base.storeBytes(of: UInt8(ascii: " "), toByteOffset: at + 1, as: UInt8.self)
                        at += 2
                        (base + at).copyMemory(from: bytes.baseAddress! + Int(entry.valueStart), byteCount: valueLength)
                        at += valueLength
                        base.storeBytes(of: UInt8(ascii: "\r"), toByteOffset: at, as: UInt8.self)
                        base.storeBytes(of: UInt8(ascii: "\n"), toByteOffset: at + 1, as: UInt8.self)
                        at += 2
                    }
                    return at
                }
            }
        }
    }

    /// Whether every field can be written as an HTTP/1 field line as it is: each name a token,
    /// each value free of CR, LF, NUL and the other control bytes but HTAB. Fields a parser
    /// recorded always can; this guards those added from elsewhere, and costs nothing when
    /// none was added that cannot.
    public var isSendable: Bool {
        guard self.mayHoldUnsendable else { return true }
        return self.firstIndex { bytes, entry in
            let name = Int(entry.nameStart)
            let value = Int(entry.valueStart)
            return !HTTPFieldList.isSendable(bytes, name: name, length: Int(entry.nameLength),
                                             value: value, length: Int(entry.valueLength))
        } == nil
    }

    /// `isSendable` for one field given as bytes.
    private static func isSendable(_ name: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer) -> Bool {
        guard name.count > 0 else { return false }
        for index in 0..<name.count where !HTTP1ByteClass.token.contains(name[index]) {
            return false
        }
        for index in 0..<value.count where !HTTP1ByteClass.lineByte.contains(value[index]) {
            return false
        }
        return true
    }

    /// A name that is a token and a value free of control bytes but HTAB. Plain loops:
    /// `allSatisfy` on a slice is generic, and unspecialized it allocates for every byte.
    private static func isSendable(_ bytes: UnsafeRawBufferPointer, name: Int, length nameLength: Int,
                                   value: Int, length valueLength: Int) -> Bool {
        guard nameLength > 0 else { return false }
        for index in name..<name + nameLength where !HTTP1ByteClass.token.contains(bytes[index]) {
            return false
        }
        for index in value..<value + valueLength where !HTTP1ByteClass.lineByte.contains(bytes[index]) {
            return false
        }
        return true
    }

    /// The fields as (name, value) strings, in order. Allocates; meant for logs and tests.
    public var pairs: [(name: String, value: String)] {
        self.entries.indices.map { (self[$0].name, self[$0].value) }
    }

    /// Whether `name` is a valid field name (a token), for callers appending fields from
    /// outside a parser.
    public static func isValidName(_ name: some Collection<UInt8>) -> Bool {
        !name.isEmpty && name.allSatisfy { HTTP1ByteClass.token.contains($0) }
    }

    /// Whether `value` is a valid field value: no CR, LF, NUL or other control byte, and no
    /// leading or trailing whitespace.
    public static func isValidValue(_ value: some Collection<UInt8>) -> Bool {
        guard value.allSatisfy({ HTTP1ByteClass.lineByte.contains($0) }) else { return false }
        guard let first = value.first, let last = value.reversed().first else { return true }
        return !HTTP1ByteClass.isWhitespace(first) && !HTTP1ByteClass.isWhitespace(last)
    }

    static func nameMatches(_ bytes: UnsafeRawBufferPointer, _ entry: Entry, _ name: StaticString) -> Bool {
        guard Int(entry.nameLength) == name.utf8CodeUnitCount else { return false }
        return HTTPFieldList.equalsIgnoringCase(
            UnsafeRawBufferPointer(rebasing: bytes[Int(entry.nameStart)..<Int(entry.nameStart + entry.nameLength)]),
            name
        )
    }

    /// Whether the bytes are exactly `string` (for methods and versions, which are case-sensitive).
    static func equals(_ bytes: UnsafeRawBufferPointer, _ string: StaticString) -> Bool {
        bytes.count == string.utf8CodeUnitCount
            && (bytes.isEmpty || memcmp(bytes.baseAddress!, string.utf8Start, bytes.count) == 0)
    }

    /// Compares bytes with a lowercase ASCII string, ignoring the case of the bytes.
    public static func equalsIgnoringCase(_ bytes: UnsafeRawBufferPointer, _ lowercase: StaticString) -> Bool {
        guard bytes.count == lowercase.utf8CodeUnitCount else { return false }
        let expected = lowercase.utf8Start
        for index in 0..<bytes.count where HTTP1ByteClass.lowercased(bytes[index]) != expected[index] {
            return false
        }
        return true
    }

    /// Whether a comma-separated list holds `token` as one of its elements (OWS trimmed).
    static func listContains(_ list: UnsafeRawBufferPointer, _ token: StaticString) -> Bool {
        var start = 0
        while start <= list.count {
            var end = start
            while end < list.count && list[end] != UInt8(ascii: ",") { end += 1 }
            var elementStart = start
            var elementEnd = end
            while elementStart < elementEnd && HTTP1ByteClass.isWhitespace(list[elementStart]) { elementStart += 1 }
            while elementEnd > elementStart && HTTP1ByteClass.isWhitespace(list[elementEnd - 1]) { elementEnd -= 1 }
            if equalsIgnoringCase(UnsafeRawBufferPointer(rebasing: list[elementStart..<elementEnd]), token) {
                return true
            }
            start = end + 1
        }
        return false
    }
}

extension HTTPFieldList: Equatable {
    /// Two lists are equal when they hold the same names and values in the same order,
    /// wherever their bytes sit.
    public static func == (lhs: HTTPFieldList, rhs: HTTPFieldList) -> Bool {
        guard lhs.count == rhs.count else { return false }
        for index in 0..<lhs.count {
            let left = lhs[index]
            let right = rhs[index]
            guard left.nameBytes.elementsEqual(right.nameBytes), left.valueBytes.elementsEqual(right.valueBytes)
            else { return false }
        }
        return true
    }
}
