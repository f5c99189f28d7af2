/// The server names a `tcp:` listener's `sni:` routes and a TLS listener's `certificates:`
/// accept: a DNS name (`db.example.com`) or a wildcard of exactly one leading label
/// (`*.internal.example`), compared without regard to case.
///
/// A wildcard stands for one label, as a certificate's does (RFC 6125): `*.internal.example`
/// covers `a.internal.example`, not `internal.example` nor `a.b.internal.example`, so a name
/// is routed where a certificate for the pattern would be valid for it.
public enum ServerNamePattern {
    /// The canonical form of `raw` (lower-cased, one trailing dot dropped), or why it is not a
    /// name or a wildcard.
    public static func canonical(_ raw: String) -> Result<String, Problem> {
        var name = raw.lowercased()
        if name.hasSuffix(".") { name.removeLast() }
        guard !name.isEmpty else { return .failure(Problem("expected a server name such as db.example.com, got ''")) }
        var labels = name.split(separator: ".", omittingEmptySubsequences: false)
        if labels.first == "*" {
            labels.removeFirst()
            guard labels.count >= 2 else {
                return .failure(Problem("a wildcard needs a domain of at least two labels after '*.', as in *.example.com, got '\(raw)'"))
            }
        }
        for label in labels {
            if label.contains("*") {
                return .failure(Problem("only a whole first label '*.' may be a wildcard, as in *.example.com, got '\(raw)'"))
            }
            guard !label.isEmpty, label.count <= 63,
                  label.utf8.allSatisfy({ isNameByte($0) }),
                  label.first != "-", label.last != "-" else {
                return .failure(Problem("expected a server name such as db.example.com or *.example.com (letters, digits, '-' and '_' between dots), got '\(raw)'"))
            }
        }
        if name.utf8.count > 253 {
            return .failure(Problem("a server name has at most 253 characters, got \(name.utf8.count)"))
        }
        return .success(name)
    }

    public struct Problem: Error, Equatable {
        public var message: String
        init(_ message: String) { self.message = message }
    }

    private static func isNameByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "_"):
            return true
        default:
            return false
        }
    }
}
