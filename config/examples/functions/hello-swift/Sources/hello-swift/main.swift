// A minimal HTTP/1.1 worker for Portico's runtime contract: listen on 127.0.0.1:$PORT, answer
// each request, exit on SIGTERM. One thread per connection keeps it short; a real function
// would use SwiftNIO or Hummingbird.
import Foundation

#if canImport(Glibc)
import Glibc
#endif

guard let port = ProcessInfo.processInfo.environment["PORT"].flatMap(UInt16.init) else {
    FileHandle.standardError.write(Data("PORT is not set\n".utf8))
    exit(2)
}
let revision = ProcessInfo.processInfo.environment["K_REVISION"] ?? "?"
signal(SIGTERM) { _ in exit(0) }
signal(SIGPIPE, SIG_IGN)

let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
var yes: Int32 = 1
setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
var address = sockaddr_in()
address.sin_family = sa_family_t(AF_INET)
address.sin_port = port.bigEndian
address.sin_addr.s_addr = inet_addr("127.0.0.1")
let bound = withUnsafePointer(to: &address) {
    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
}
guard bound == 0, listen(listener, 128) == 0 else {
    perror("listen")
    exit(1)
}
print("listening on 127.0.0.1:\(port)")
fflush(nil)  // every stream: `stdout` is a C global Swift 6 will not let a program touch

/// Serves one keep-alive connection: reads each request head (and skips its body), answers it.
/// On a thread per connection, so it takes everything it needs as arguments.
@Sendable func serve(_ fd: Int32, revision: String) {
    defer { close(fd) }
    var pending = [UInt8]()
    var chunk = [UInt8](repeating: 0, count: 16384)
    while true {
        while let end = pending.firstRange(of: Array("\r\n\r\n".utf8)) {
            let head = String(decoding: pending[..<end.lowerBound], as: UTF8.self)
            let requestLine = head.split(separator: "\r\n").first.map(String.init) ?? ""
            let bodyLength = head.split(separator: "\r\n").dropFirst().compactMap { line -> Int? in
                let parts = line.split(separator: ":", maxSplits: 1)
                guard parts.count == 2, parts[0].lowercased() == "content-length" else { return nil }
                return Int(parts[1].trimmingCharacters(in: .whitespaces))
            }.first ?? 0
            guard pending.count >= end.upperBound + bodyLength else { break }
            pending.removeFirst(end.upperBound + bodyLength)
            let path = requestLine.split(separator: " ").dropFirst().first.map(String.init) ?? "/"
            let body = "Hello from Swift, \(revision): you asked for \(path)\n"
            let response = "HTTP/1.1 200 OK\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: \(body.utf8.count)\r\n\r\n\(body)"
            let bytes = Array(response.utf8)
            guard bytes.withUnsafeBytes({ write(fd, $0.baseAddress, $0.count) }) == bytes.count else { return }
        }
        let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if count <= 0 { return }
        pending.append(contentsOf: chunk[0..<count])
    }
}

while true {
    let connection = accept(listener, nil, nil)
    if connection < 0 { continue }
    Thread.detachNewThread { serve(connection, revision: revision) }
}
