/// The gRPC media types (gRPC over HTTP/2, and gRPC-Web), told apart by `content-type` alone
/// as Envoy's `grpc` route match and grpc_web filter do.
public enum GRPCContentType: Equatable, Sendable {
    /// `application/grpc` and `application/grpc+proto` (or any other `+codec`).
    case grpc
    /// `application/grpc-web` and `application/grpc-web+proto`: binary frames over HTTP/1.1 or h2.
    case grpcWeb
    /// `application/grpc-web-text` and `+proto`: the same frames, base64-encoded.
    case grpcWebText

    /// The kind `value` names, or nil for any other media type. Case-insensitive; parameters
    /// after `;` are ignored.
    public init?(_ value: String) {
        var value = value
        guard let kind = value.withUTF8({ GRPCContentType(bytes: UnsafeRawBufferPointer($0)) }) else { return nil }
        self = kind
    }

    /// The same, from a field's bytes: no `String` is made for the request path's check.
    public init?(bytes: UnsafeRawBufferPointer) {
        guard let rest = Self.strip("application/grpc", from: bytes) else { return nil }
        var found = GRPCContentType.grpc
        var remaining = rest
        if let after = Self.strip("-web-text", from: rest) {
            found = .grpcWebText
            remaining = after
        } else if let after = Self.strip("-web", from: rest) {
            found = .grpcWeb
            remaining = after
        }
        // What may follow: nothing, a codec (`+proto`), or parameters.
        if let first = remaining.first, first != UInt8(ascii: "+"), first != UInt8(ascii: ";"), first != UInt8(ascii: " ") {
            return nil
        }
        self = found
    }

    /// `bytes` without `prefix` (compared case-insensitively), or nil when it does not start so.
    private static func strip(_ prefix: StaticString, from bytes: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer? {
        let count = prefix.utf8CodeUnitCount
        guard bytes.count >= count else { return nil }
        let start = prefix.utf8Start
        for index in 0..<count where lower(bytes[index]) != start[index] { return nil }
        return UnsafeRawBufferPointer(rebasing: bytes[count...])
    }

    /// Whether `value` is any gRPC media type, gRPC-Web included.
    public static func isGRPC(_ value: String) -> Bool {
        GRPCContentType(value) != nil
    }

    private static func lower(_ byte: UInt8) -> UInt8 {
        byte >= 0x41 && byte <= 0x5A ? byte | 0x20 : byte
    }
}
