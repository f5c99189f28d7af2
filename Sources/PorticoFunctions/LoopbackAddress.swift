#if canImport(Glibc)
import Glibc
#endif

/// 127.0.0.1 and a port, as the socket calls take it: how workers, their probes and the Lambda
/// Runtime API reach each other, below SwiftNIO where a channel would cost more than the call.
enum LoopbackAddress {
    /// `bind` or `connect` (or any call of that shape) on 127.0.0.1:`port`.
    static func call(_ body: (Int32, UnsafePointer<sockaddr>, socklen_t) -> Int32, socket fd: Int32, port: Int) -> Int32 {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
    }

    /// The port a socket is bound to (the kernel's pick after binding to port 0).
    static func boundPort(of fd: Int32) -> Int {
        var address = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}
