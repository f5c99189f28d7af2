/// A path regex compiled when the route table is built, shareable across event loops.
///
/// `Regex` is not declared `Sendable`, but matching never mutates it: its only mutable state
/// is the lazily lowered program, which the standard library stores with an atomic
/// compare-and-swap. `init` forces that lowering so no request pays for it, and so no two
/// threads race to do it.
struct CompiledRegex: @unchecked Sendable {
    let pattern: String
    private let regex: Regex<AnyRegexOutput>

    init(_ pattern: String) throws {
        self.pattern = pattern
        self.regex = try Regex(pattern)
        _ = try? regex.wholeMatch(in: "/")
    }

    /// True when the pattern matches all of `path`, not just part of it.
    func matchesWhole(_ path: String) -> Bool {
        (try? regex.wholeMatch(in: path)) != nil
    }
}
