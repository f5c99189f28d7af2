extension String {
    /// `/a/b?x=1` as `("/a/b", "x=1")`.
    func splitQuery() -> (String, String) {
        guard let mark = firstIndex(of: "?") else { return (self, "") }
        return (String(self[..<mark]), String(self[index(after: mark)...]))
    }
}
