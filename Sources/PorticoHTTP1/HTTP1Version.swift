/// The two HTTP/1 versions Portico speaks; `HTTP/0.9`, `HTTP/1.2` and `HTTP/2.0` start lines
/// are rejected rather than guessed at.
public enum HTTP1Version: Sendable, Hashable {
    case http1_0
    case http1_1

    /// Parses exactly `HTTP/1.0` or `HTTP/1.1` (the name is case-sensitive, RFC 9112 §2.3).
    static func parse(_ bytes: UnsafeRawBufferPointer) -> HTTP1Version? {
        guard bytes.count == 8, HTTPFieldList.equals(UnsafeRawBufferPointer(rebasing: bytes[0..<7]), "HTTP/1.") else {
            return nil
        }
        switch bytes[7] {
        case UInt8(ascii: "0"): return .http1_0
        case UInt8(ascii: "1"): return .http1_1
        default: return nil
        }
    }
}
