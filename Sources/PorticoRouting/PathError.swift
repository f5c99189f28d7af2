/// Why `PathNormalizer` refused a request-target; the gateway answers each with 400.
public enum PathError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The target was empty.
    case empty
    /// The path does not start with `/` (and the target is not absolute-form or `*`).
    case notAbsolutePath
    /// `*` with a method other than `OPTIONS`.
    case asteriskNotAllowed
    /// A `%` not followed by two hex digits (`%zz`, `%4`).
    case invalidEscape
    /// `%2F` or `%5C`: an escaped separator that backends disagree about.
    case encodedSeparator
    /// A `..` segment that would climb above `/`.
    case aboveRoot
    /// A byte a request-target may not hold raw: a control character, a space, `#`, `\` or non-ASCII.
    case invalidCharacter(UInt8)
    /// An absolute-form target whose scheme is not `http` or `https`.
    case unsupportedScheme
    /// An absolute-form target with an empty authority or with userinfo (`user@host`).
    case invalidAuthority

    public var description: String {
        switch self {
        case .empty: return "empty request target"
        case .notAbsolutePath: return "request path must start with '/'"
        case .asteriskNotAllowed: return "'*' request target is only allowed with OPTIONS"
        case .invalidEscape: return "invalid percent-escape in request path"
        case .encodedSeparator: return "escaped '/' or '\\' in request path"
        case .aboveRoot: return "'..' climbs above the root of the request path"
        case .invalidCharacter(let byte):
            let hex = String(byte, radix: 16, uppercase: true)
            return "invalid character 0x\(hex.count == 1 ? "0" + hex : hex) in request target"
        case .unsupportedScheme: return "absolute-form request target must use http or https"
        case .invalidAuthority: return "absolute-form request target has an invalid authority"
        }
    }
}
