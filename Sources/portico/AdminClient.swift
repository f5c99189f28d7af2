import Foundation
import PorticoConfig

#if canImport(Glibc)
import Glibc
#endif

/// A blocking HTTP/1.1 GET to the gateway's admin API, for the command-line tools.
///
/// A command waits for one answer at a time and has nothing else to do meanwhile, so plain
/// sockets with a timeout do; an event loop would only add a thread. The admin API answers
/// with a `content-length` and is asked to close, so the body is what comes until then.
enum AdminClient {
    enum Failure: Error, CustomStringConvertible {
        /// Nothing listens there: no gateway runs with this config.
        case refused(String)
        case failed(String)

        var description: String {
            switch self {
            case .refused(let message), .failed(let message): return message
            }
        }
    }

    struct Response {
        var status: Int
        var body: Data
    }

    static func get(_ address: HostPort, path: String, timeout: TimeInterval) throws -> Response {
        // A wildcard listen address is reached on loopback.
        let host = address.host == "0.0.0.0" || address.host.isEmpty ? "127.0.0.1" : address.host == "::" ? "::1" : address.host
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, String(address.port), &hints, &list) == 0, let first = list else {
            throw Failure.failed("cannot resolve \(host)")
        }
        defer { freeaddrinfo(list) }

        let fd = socket(first.pointee.ai_family, first.pointee.ai_socktype, first.pointee.ai_protocol)
        guard fd >= 0 else { throw Failure.failed("socket: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var limit = timeval(tv_sec: Int(timeout), tv_usec: Int((timeout - timeout.rounded(.down)) * 1_000_000))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        guard connect(fd, first.pointee.ai_addr, first.pointee.ai_addrlen) == 0 else {
            let reason = String(cString: strerror(errno))
            if errno == ECONNREFUSED { throw Failure.refused("nothing listens on \(address) (\(reason))") }
            throw Failure.failed("cannot connect to \(address): \(reason)")
        }

        let request = Array("GET \(path) HTTP/1.1\r\nHost: \(address)\r\nConnection: close\r\n\r\n".utf8)
        var sent = 0
        while sent < request.count {
            let n = request[sent...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { throw Failure.failed("cannot send to \(address): \(String(cString: strerror(errno)))") }
            sent += n
        }
        // The answer ends at its content-length (the admin server may keep the connection open)
        // or when the server closes.
        var received = Data()
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            if let response = complete(received) { return response }
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n == 0 { break }
            guard n > 0 else { throw Failure.failed("no answer from \(address): \(String(cString: strerror(errno)))") }
            received.append(contentsOf: chunk[..<n])
        }
        guard let response = complete(received, closed: true) else { throw Failure.failed("\(address) did not answer HTTP") }
        return response
    }

    /// The response in `received` once it is whole: its head and `content-length` bytes of body
    /// (or everything, once the server closed).
    private static func complete(_ received: Data, closed: Bool = false) -> Response? {
        guard let headEnd = received.range(of: Data("\r\n\r\n".utf8)),
              let head = String(data: received[..<headEnd.lowerBound], encoding: .utf8) else { return nil }
        let lines = head.split(separator: "\r\n")
        let parts = (lines.first ?? "").split(separator: " ")
        guard parts.count >= 2, let status = Int(parts[1]) else { return nil }
        let length = lines.dropFirst().compactMap { line -> Int? in
            let pair = line.split(separator: ":", maxSplits: 1)
            guard pair.count == 2, pair[0].lowercased() == "content-length" else { return nil }
            return Int(pair[1].trimmingCharacters(in: .whitespaces))
        }.first
        let body = received[headEnd.upperBound...]
        if let length {
            guard body.count >= length else { return nil }
            return Response(status: status, body: Data(body.prefix(length)))
        }
        return closed ? Response(status: status, body: Data(body)) : nil
    }
}
