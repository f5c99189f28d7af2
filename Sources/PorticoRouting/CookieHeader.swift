/// Reads one cookie out of a `Cookie` header value (RFC 6265 5.4: `name=value` pairs
/// separated by `;` and a space), for a split that keeps a client on one side by a cookie.
public enum CookieHeader {
    /// The value of the first cookie called `name` (names compare exactly), without the double
    /// quotes RFC 6265 allows around it; `nil` when there is none.
    public static func value(named name: String, in header: String) -> Substring? {
        for pair in header.split(separator: ";", omittingEmptySubsequences: true) {
            let trimmed = pair.drop { $0 == " " || $0 == "\t" }
            guard let equals = trimmed.firstIndex(of: "=") else { continue }
            // Browsers send the space RFC 6265 asks for; others may leave some before the `=`.
            var pairName = trimmed[..<equals]
            while let last = pairName.last, last == " " || last == "\t" { pairName = pairName.dropLast() }
            guard pairName == name else { continue }
            var value = trimmed[trimmed.index(after: equals)...].drop { $0 == " " || $0 == "\t" }
            while let last = value.last, last == " " || last == "\t" { value = value.dropLast() }
            if value.count >= 2, value.first == "\"", value.last == "\"" {
                value = value.dropFirst().dropLast()
            }
            return value
        }
        return nil
    }
}
