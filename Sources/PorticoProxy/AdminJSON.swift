import Foundation

/// How the admin API writes JSON: `JSONEncoder`, pretty with sorted keys (a diff between two
/// reads shows changes, not reordering), paths without `\/`, and a final newline.
enum AdminJSON {
    static func encode(_ value: some Encodable) -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        var data = (try? encoder.encode(value)) ?? Data("{}".utf8)
        data.append(UInt8(ascii: "\n"))
        return data
    }
}
