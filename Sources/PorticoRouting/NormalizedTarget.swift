/// An HTTP request-target after `PathNormalizer` accepted it: the path routes match on, the
/// query to forward untouched, and the authority when the client sent absolute-form.
public struct NormalizedTarget: Sendable, Equatable {
    /// Which of the request-target forms of RFC 9112 §3.2 the client used.
    public enum Form: Sendable, Equatable {
        /// `/path?query`, the form nearly every request uses.
        case origin
        /// `http://host:port/path?query`, sent to proxies; `authority` and `scheme` are set.
        case absolute
        /// `*`, only valid with `OPTIONS`; `path` is `"*"` and routes should not match it.
        case asterisk
    }

    public var form: Form
    /// The normalized path, always starting with `/` (or `"*"` for `.asterisk`), without the query.
    public var path: String
    /// The query without its `?`, byte for byte as received; `""` for a bare trailing `?`.
    public var query: String?
    /// `host[:port]` from an absolute-form target, as received (case kept).
    public var authority: String?
    /// Lower-cased `http` or `https` from an absolute-form target.
    public var scheme: String?

    public init(form: Form = .origin, path: String, query: String? = nil, authority: String? = nil, scheme: String? = nil) {
        self.form = form
        self.path = path
        self.query = query
        self.authority = authority
        self.scheme = scheme
    }

    /// The asterisk-form target of `OPTIONS * HTTP/1.1`.
    public static let asterisk = NormalizedTarget(form: .asterisk, path: "*")
}
