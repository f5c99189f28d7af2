extension FunctionManifest {
    /// A function name is a DNS label, as Knative requires of a service name, so it can appear in
    /// host names, metric labels and `K_SERVICE` without escaping.
    public static let maxNameLength = 63

    /// Whether `name` can name a function: `[a-z0-9]([-a-z0-9]*[a-z0-9])?`, at most 63 characters.
    public static func isValidName(_ name: String) -> Bool {
        nameProblem(name) == nil
    }

    /// Why `name` is not a valid function name, worded for a diagnostic; nil when it is valid.
    static func nameProblem(_ name: String) -> String? {
        let rule = "use lower-case letters, digits and '-', starting and ending with a letter or digit"
        guard !name.isEmpty else {
            return "a function name must not be empty; \(rule)"
        }
        let scalars = name.unicodeScalars
        func isLetterOrDigit(_ s: Unicode.Scalar) -> Bool { ("a"..."z").contains(s) || ("0"..."9").contains(s) }
        guard scalars.allSatisfy({ isLetterOrDigit($0) || $0 == "-" }),
              let first = scalars.first, let last = scalars.last,
              isLetterOrDigit(first), isLetterOrDigit(last) else {
            return "'\(name)' is not a valid function name; \(rule)"
        }
        // Counted after the character check, so it is also a count of bytes.
        guard scalars.count <= maxNameLength else {
            return "'\(name)' is \(scalars.count) characters long; a function name has at most \(maxNameLength)"
        }
        return nil
    }
}
