import PorticoConfig

extension RouteTable {
    /// The path and query to send upstream for a request on `matched`.
    ///
    /// With `rewrite.prefix`, a prefix route has its matched prefix replaced and keeps the
    /// rest of the path; any other route has its whole path replaced. The query is kept as
    /// received. Without a rewrite, this is the normalized path plus the query.
    public func upstreamPath(for matched: MatchedRoute, normalizedPath: String, query: String?) -> String {
        var path: String
        if let replacement = matched.config.rewrite?.prefix {
            path = Self.replacePrefix(of: normalizedPath, matched: matched.matchedPrefix, with: replacement)
        } else {
            path = normalizedPath
        }
        if let query {
            path.reserveCapacity(path.utf8.count + 1 + query.utf8.count)
            path.append("?")
            path.append(query)
        }
        return path
    }

    /// Replaces `prefix` at the start of `path` with `replacement` (or the whole path when
    /// there is no matched prefix), without producing `//` where the two meet: `/beta/x`
    /// rewritten from `/beta` to `/` is `/x`, not `//x`.
    static func replacePrefix(of path: String, matched prefix: String?, with replacement: String) -> String {
        guard let prefix, path.utf8.starts(with: prefix.utf8) else {
            return replacement.isEmpty ? "/" : replacement
        }
        var rest = Substring(path.utf8.dropFirst(prefix.utf8.count))
        if replacement.utf8.last == ASCII.slash && rest.utf8.first == ASCII.slash {
            rest = Substring(rest.utf8.dropFirst())
        }
        var result = ""
        result.reserveCapacity(replacement.utf8.count + rest.utf8.count + 1)
        // An empty replacement (or `/beta/` → ``) must still leave an absolute path.
        if replacement.utf8.first != ASCII.slash && !(replacement.isEmpty && rest.utf8.first == ASCII.slash) {
            result.append("/")
        }
        result.append(replacement)
        result.append(contentsOf: rest)
        return result
    }
}
