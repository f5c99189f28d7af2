/// Turns a request-target as received into the one path that routing, rewriting and the
/// upstream all agree on, or refuses it.
///
/// Normalizing once, before routing, is what keeps `/admin` unreachable through `//admin`,
/// `/x/../admin` or `/%61dmin`: every later stage sees the same bytes. Anything ambiguous
/// (escaped separators, climbing above the root, raw controls) is refused rather than guessed,
/// because a guess that differs from the backend's is exactly how path-based rules get bypassed.
///
/// Runs once per request, so it works on the UTF-8 bytes and, for a path that is already
/// normal (the common case), hands back the received string instead of building a new one.
public enum PathNormalizer {
    /// Normalizes `requestTarget` (origin-form, absolute-form or `*`).
    ///
    /// - Parameter method: when given, `*` is accepted only for `OPTIONS`; pass `nil` to leave
    ///   that check to the caller (the result's `form` is `.asterisk`).
    public static func normalize(_ requestTarget: String, method: String? = nil) -> Result<NormalizedTarget, PathError> {
        var target = requestTarget
        // `withUTF8` is free for native strings; it only copies a bridged one.
        return target.withUTF8 { bytes in
            normalize(bytes: bytes, original: requestTarget, method: method)
        }
    }

    private static func normalize(
        bytes: UnsafeBufferPointer<UInt8>, original: String, method: String?
    ) -> Result<NormalizedTarget, PathError> {
        let end = bytes.count
        guard end > 0 else { return .failure(.empty) }

        if end == 1 && bytes[0] == ASCII.asterisk {
            if let method, method != "OPTIONS" { return .failure(.asteriskNotAllowed) }
            return .success(.asterisk)
        }

        // Where the query starts (the byte after '?'), validating raw bytes on the way: the
        // query is forwarded untouched, but a space or control in it would still split or
        // smuggle the request line we send upstream.
        var queryStart: Int? = nil
        for index in 0..<end {
            let byte = bytes[index]
            if queryStart == nil {
                if byte == ASCII.question { queryStart = index + 1; continue }
                if !isAllowedInPath(byte) { return .failure(.invalidCharacter(byte)) }
            } else if !isAllowedInQuery(byte) {
                return .failure(.invalidCharacter(byte))
            }
        }
        let pathEnd = queryStart.map { $0 - 1 } ?? end

        var form = NormalizedTarget.Form.origin
        var pathStart = 0
        var authority: String? = nil
        var scheme: String? = nil
        if bytes[0] != ASCII.slash {
            switch parseAbsoluteForm(bytes, pathEnd: pathEnd) {
            case .failure(let error):
                return .failure(error)
            case .success(let parsed):
                form = .absolute
                pathStart = parsed.pathStart
                authority = parsed.authority
                scheme = parsed.scheme
            }
        }

        let query = queryStart.map { string(bytes, $0, end) }

        // Absolute-form with nothing after the authority (`http://host?x`) means `/`.
        if pathStart == pathEnd {
            return .success(NormalizedTarget(form: form, path: "/", query: query, authority: authority, scheme: scheme))
        }

        let path: String
        if isAlreadyNormal(bytes, pathStart, pathEnd) {
            // The common case: reuse the received string when it is nothing but the path.
            path = (pathStart == 0 && pathEnd == end) ? original : string(bytes, pathStart, pathEnd)
        } else {
            switch rebuild(bytes, pathStart, pathEnd) {
            case .success(let rebuilt): path = rebuilt
            case .failure(let error): return .failure(error)
            }
        }
        return .success(NormalizedTarget(form: form, path: path, query: query, authority: authority, scheme: scheme))
    }

    // MARK: - Fast check

    /// True when `rebuild` would return the same bytes: no empty, `.` or `..` segment and only
    /// escapes that are kept as they are. Raw bytes were validated already.
    private static func isAlreadyNormal(_ bytes: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int) -> Bool {
        var index = start
        while index < end {
            let byte = bytes[index]
            if byte == ASCII.slash {
                // A segment that starts with '.' may be a dot segment; `/.well-known` takes the
                // slow path too, which is rare enough not to matter.
                if index + 1 < end, bytes[index + 1] == ASCII.slash || bytes[index + 1] == ASCII.dot {
                    return false
                }
            } else if byte == ASCII.percent {
                guard index + 2 < end,
                      let high = upperHexValue(bytes[index + 1]),
                      let low = upperHexValue(bytes[index + 2]) else { return false }
                let decoded = high << 4 | low
                if isUnreserved(decoded) || decoded == ASCII.slash || decoded == ASCII.backslash { return false }
                index += 3
                continue
            }
            index += 1
        }
        return true
    }

    // MARK: - Slow path

    /// Decodes, merges slashes and resolves dot segments in one pass, writing straight into the
    /// new string's storage (the result is never longer than the input).
    private static func rebuild(_ bytes: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int) -> Result<String, PathError> {
        var failure: PathError? = nil
        let path = String(unsafeUninitializedCapacity: end - start) { out in
            out[0] = ASCII.slash
            var written = 1
            var index = start + 1
            while index < end {
                if bytes[index] == ASCII.slash {
                    index += 1  // merges `//` (the output already ends with '/')
                    continue
                }
                let segmentStart = written
                while index < end && bytes[index] != ASCII.slash {
                    let byte = bytes[index]
                    guard byte == ASCII.percent else {
                        out[written] = byte
                        written += 1
                        index += 1
                        continue
                    }
                    guard index + 2 < end,
                          let high = hexValue(bytes[index + 1]),
                          let low = hexValue(bytes[index + 2]) else {
                        failure = .invalidEscape
                        return 0
                    }
                    let decoded = high << 4 | low
                    if decoded == ASCII.slash || decoded == ASCII.backslash {
                        failure = .encodedSeparator
                        return 0
                    }
                    if isUnreserved(decoded) {
                        out[written] = decoded
                        written += 1
                    } else {
                        out[written] = ASCII.percent
                        out[written + 1] = upperHexDigit(high)
                        out[written + 2] = upperHexDigit(low)
                        written += 3
                    }
                    index += 3
                }
                // Dot segments are judged after decoding, so `%2e%2e` is `..` too.
                let length = written - segmentStart
                if length == 1 && out[segmentStart] == ASCII.dot {
                    written = segmentStart
                } else if length == 2 && out[segmentStart] == ASCII.dot && out[segmentStart + 1] == ASCII.dot {
                    // Refused rather than clamped to `/`: a client that climbs above the root is
                    // probing, and clamping would hand it a path it did not ask for.
                    if segmentStart == 1 {
                        failure = .aboveRoot
                        return 0
                    }
                    var previous = segmentStart - 2
                    while out[previous] != ASCII.slash { previous -= 1 }
                    written = previous + 1
                } else if index < end {
                    out[written] = ASCII.slash
                    written += 1
                }
            }
            return written
        }
        if let failure { return .failure(failure) }
        return .success(path)
    }

    // MARK: - Absolute-form

    private struct AbsoluteForm {
        var scheme: String
        var authority: String
        var pathStart: Int
    }

    private static func parseAbsoluteForm(_ bytes: UnsafeBufferPointer<UInt8>, pathEnd: Int) -> Result<AbsoluteForm, PathError> {
        var index = 0
        while index < pathEnd, isSchemeCharacter(bytes[index]) { index += 1 }
        guard index > 0, index + 3 <= pathEnd,
              bytes[index] == ASCII.colon, bytes[index + 1] == ASCII.slash, bytes[index + 2] == ASCII.slash else {
            return .failure(.notAbsolutePath)
        }
        let scheme = string(bytes, 0, index).lowercased()
        guard scheme == "http" || scheme == "https" else { return .failure(.unsupportedScheme) }

        let authorityStart = index + 3
        var authorityEnd = authorityStart
        while authorityEnd < pathEnd && bytes[authorityEnd] != ASCII.slash {
            // Userinfo in an http URI is deprecated (RFC 9110 §4.2.4) and a classic way to make
            // a URL look like it goes somewhere else.
            if bytes[authorityEnd] == ASCII.at { return .failure(.invalidAuthority) }
            authorityEnd += 1
        }
        guard authorityEnd > authorityStart else { return .failure(.invalidAuthority) }
        return .success(AbsoluteForm(
            scheme: scheme,
            authority: string(bytes, authorityStart, authorityEnd),
            pathStart: authorityEnd
        ))
    }

    // MARK: - Bytes

    private static func string(_ bytes: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int) -> String {
        String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<end]), as: UTF8.self)
    }

    /// Printable ASCII except `#` (a fragment never belongs in a request) and `\` (which some
    /// backends treat as `/`, so it would dodge the slash handling above).
    private static func isAllowedInPath(_ byte: UInt8) -> Bool {
        byte > 0x20 && byte < 0x7F && byte != ASCII.hash && byte != ASCII.backslash
    }

    private static func isAllowedInQuery(_ byte: UInt8) -> Bool {
        byte > 0x20 && byte < 0x7F && byte != ASCII.hash
    }

    /// RFC 3986 unreserved: ALPHA / DIGIT / "-" / "." / "_" / "~".
    private static func isUnreserved(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
             UInt8(ascii: "0")...UInt8(ascii: "9"),
             UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
            return true
        default:
            return false
        }
    }

    private static func isSchemeCharacter(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
             UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."):
            return true
        default:
            return false
        }
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
        default: return nil
        }
    }

    /// Like `hexValue`, but lower-case digits count as "needs rewriting".
    private static func upperHexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
        default: return nil
        }
    }

    private static func upperHexDigit(_ value: UInt8) -> UInt8 {
        value < 10 ? UInt8(ascii: "0") + value : UInt8(ascii: "A") + value - 10
    }
}
