import NIOCore

#if canImport(Glibc)
import Glibc
#endif

/// A listener (or the admin API) could not open its address: says which, where, and why, so
/// "address already in use" names the address a newcomer has to free.
public struct ListenerBindError: Error, CustomStringConvertible {
    public let what: String
    public let address: String
    public let underlying: Error

    public var description: String {
        let reason: String
        if let error = underlying as? IOError {
            // `IOError`'s own text is "bind(descriptor:ptr:bytes:): Address already in use (errno: 98)".
            reason = String(cString: strerror(error.errnoCode)).lowercased()
        } else {
            reason = "\(underlying)"
        }
        return "\(what) cannot listen on \(address): \(reason)"
    }
}
