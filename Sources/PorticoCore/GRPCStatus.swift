/// What the gateway says to a gRPC client in gRPC's own terms: a gRPC client reads a call's
/// outcome from `grpc-status`, not from the HTTP status, and a bare 404 or 503 reaches the
/// application as an opaque UNKNOWN or INTERNAL.
public enum GRPCStatus {
    public static let ok = 0
    public static let cancelled = 1
    public static let unknown = 2
    public static let deadlineExceeded = 4
    public static let resourceExhausted = 8
    public static let permissionDenied = 7
    public static let unimplemented = 12
    public static let `internal` = 13
    public static let unavailable = 14
    public static let unauthenticated = 16

    /// The code for a gateway answer of HTTP status `status`. gRPC's own table
    /// (doc/http-grpc-status-mapping.md) with Envoy's local-reply choices where they differ:
    /// a rate limit is RESOURCE_EXHAUSTED and a gateway timeout DEADLINE_EXCEEDED, which is
    /// what a retry policy and a client's error handling look for.
    public static func code(forHTTPStatus status: Int) -> Int {
        switch status {
        case 200..<300: return ok
        case 400: return `internal`
        case 401: return unauthenticated
        case 403: return permissionDenied
        case 404, 405, 501: return unimplemented
        case 408, 504: return deadlineExceeded
        case 413, 429, 431: return resourceExhausted
        case 502, 503: return unavailable
        default: return unknown
        }
    }

    /// `grpc-message` as the gRPC HTTP/2 protocol encodes it: percent-encoded UTF-8, every byte
    /// outside printable ASCII and `%` itself as `%XX`.
    public static func encodeMessage(_ message: String) -> String {
        var encoded = ""
        encoded.reserveCapacity(message.utf8.count)
        let hex = Array("0123456789ABCDEF".utf8)
        for byte in message.utf8 {
            if byte >= 0x20 && byte <= 0x7E && byte != UInt8(ascii: "%") {
                encoded.unicodeScalars.append(Unicode.Scalar(byte))
            } else {
                encoded.unicodeScalars.append("%")
                encoded.unicodeScalars.append(Unicode.Scalar(hex[Int(byte >> 4)]))
                encoded.unicodeScalars.append(Unicode.Scalar(hex[Int(byte & 0x0F)]))
            }
        }
        return encoded
    }

    /// A `grpc-timeout` value in nanoseconds: at most 8 digits and a unit, `H` `M` `S` `m` `u`
    /// `n` (the gRPC HTTP/2 protocol). Nil for anything else, which is then ignored.
    public static func timeoutNanoseconds(_ value: some StringProtocol) -> Int64? {
        let bytes = Array(value.utf8)
        guard bytes.count >= 2, bytes.count <= 9, let unit = bytes.last else { return nil }
        var amount: Int64 = 0
        for byte in bytes.dropLast() {
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
            amount = amount * 10 + Int64(byte - UInt8(ascii: "0"))
        }
        let scale: Int64
        switch unit {
        case UInt8(ascii: "H"): scale = 3_600_000_000_000
        case UInt8(ascii: "M"): scale = 60_000_000_000
        case UInt8(ascii: "S"): scale = 1_000_000_000
        case UInt8(ascii: "m"): scale = 1_000_000
        case UInt8(ascii: "u"): scale = 1_000
        case UInt8(ascii: "n"): scale = 1
        default: return nil
        }
        let (product, overflow) = amount.multipliedReportingOverflow(by: scale)
        return overflow ? Int64.max : product
    }

    /// The `grpc-status` value, or nil when it is not a number of at most three digits.
    public static func parse(_ value: some StringProtocol) -> Int? {
        guard !value.isEmpty, value.utf8.count <= 3, value.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
        return Int(value)
    }
}
