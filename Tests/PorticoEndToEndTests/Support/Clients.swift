import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A response as a client saw it.
struct ClientResponse {
    var status: Int
    var headers: [(String, String)]
    var body: String
    /// `1.1` or `2`, from curl.
    var httpVersion: String = ""

    func header(_ name: String) -> String? {
        headers.first { $0.0.lowercased() == name.lowercased() }?.1
    }
}

/// A blocking TCP client that sends bytes exactly as given: for requests that curl refuses to
/// send (conflicting lengths, smuggling attempts) and for pipelining.
final class RawSocket {
    private let fd: Int32

    init(port: Int, timeout: TimeInterval = 5) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw HarnessError.socket("socket") }
        var tv = timeval(tv_sec: Int(timeout), tv_usec: Int((timeout - Double(Int(timeout))) * 1_000_000))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else {
            close(fd)
            throw HarnessError.socket("connect to \(port) failed")
        }
    }

    deinit { close(fd) }

    func send(_ text: String) { send(Array(text.utf8)) }

    func send(_ bytes: [UInt8]) {
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if written <= 0 { return }
            offset += written
        }
    }

    /// Reads until the peer closes, the timeout passes, or `until` says the bytes are enough.
    func receive(until done: ([UInt8]) -> Bool = { _ in false }) -> [UInt8] {
        var received: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while !done(received) {
            let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count <= 0 { break }
            received.append(contentsOf: chunk[0..<count])
        }
        return received
    }

    /// Shuts the sending side (a FIN), as `nc -N` does after its request.
    func shutdownWrite() {
        shutdown(fd, Int32(SHUT_WR))
    }

    /// True when the peer has closed the connection (a read returns end of stream).
    func peerClosed() -> Bool {
        var byte: UInt8 = 0
        return recv(fd, &byte, 1, 0) == 0
    }
}

enum RawHTTP {
    /// Sends `request` on a new connection and parses one response.
    static func request(port: Int, _ request: String, timeout: TimeInterval = 5) throws -> ClientResponse {
        let socket = try RawSocket(port: port, timeout: timeout)
        socket.send(request)
        let bytes = socket.receive { completeResponses(in: $0) >= 1 }
        guard let response = parseResponses(bytes).first else { throw HarnessError.socket("no response") }
        return response
    }

    /// Counts complete responses (content-length framed) in `bytes`.
    static func completeResponses(in bytes: [UInt8]) -> Int {
        parseResponses(bytes).count
    }

    /// Parses consecutive `Content-Length`-framed responses; stops at the first incomplete one.
    static func parseResponses(_ bytes: [UInt8]) -> [ClientResponse] {
        var responses: [ClientResponse] = []
        var rest = bytes[...]
        let separator: [UInt8] = [13, 10, 13, 10]
        while let headerEnd = rest.firstRange(of: separator) {
            let headText = String(decoding: rest[rest.startIndex..<headerEnd.lowerBound], as: UTF8.self)
            var lines = headText.components(separatedBy: "\r\n")
            let statusLine = lines.removeFirst().split(separator: " ")
            guard statusLine.count >= 2, let status = Int(statusLine[1]) else { break }
            let headers = lines.compactMap { line -> (String, String)? in
                guard let colon = line.firstIndex(of: ":") else { return nil }
                return (String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
            }
            let length = headers.first { $0.0.lowercased() == "content-length" }.flatMap { Int($0.1) } ?? 0
            let bodyStart = headerEnd.upperBound
            if status >= 100 && status < 200 && status != 101 {
                rest = rest[bodyStart...]
                continue
            }
            guard rest.distance(from: bodyStart, to: rest.endIndex) >= length else { break }
            let bodyEnd = rest.index(bodyStart, offsetBy: length)
            responses.append(ClientResponse(status: status, headers: headers,
                                            body: String(decoding: rest[bodyStart..<bodyEnd], as: UTF8.self)))
            rest = rest[bodyEnd...]
        }
        return responses
    }
}

/// curl, the client a user would reach for.
enum Curl {
    struct Result {
        var status: Int
        var httpVersion: String
        var body: String
        var headers: [(String, String)]
        var exitCode: Int32
        var errorOutput: String

        func header(_ name: String) -> String? {
            headers.first { $0.0.lowercased() == name.lowercased() }?.1
        }
    }

    /// Runs curl with `arguments`; the status and HTTP version come from `--write-out`.
    @discardableResult
    static func run(_ arguments: [String], timeout: TimeInterval = 30, stdin: Data? = nil) throws -> Result {
        let directory = FileManager.default.temporaryDirectory
        let headersFile = directory.appendingPathComponent("curl-headers-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: headersFile) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
        process.arguments = ["--silent", "--show-error", "--max-time", String(Int(timeout)),
                             "--dump-header", headersFile.path,
                             "--write-out", "\n%{http_code} %{http_version}"] + arguments
        let output = Pipe()
        let errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        let input = Pipe()
        if stdin != nil { process.standardInput = input }
        try process.run()
        if let stdin {
            input.fileHandleForWriting.write(stdin)
            try input.fileHandleForWriting.close()
        }
        let data = output.fileHandleForReading.readDataToEndOfFile()
        let errorData = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        var text = String(decoding: data, as: UTF8.self)
        var status = 0
        var version = ""
        if let newline = text.lastIndex(of: "\n") {
            let trailer = text[text.index(after: newline)...].split(separator: " ")
            status = trailer.first.flatMap { Int($0) } ?? 0
            version = trailer.count > 1 ? String(trailer[1]) : ""
            text = String(text[..<newline])
        }
        let headerText = (try? String(contentsOf: headersFile, encoding: .utf8)) ?? ""
        // With interim responses (100 Continue) several header blocks appear; keep the last.
        let lastBlock = headerText.components(separatedBy: "\r\n\r\n").filter { !$0.isEmpty }.last ?? ""
        let headers = lastBlock.components(separatedBy: "\r\n").dropFirst().compactMap { line -> (String, String)? in
            guard let colon = line.firstIndex(of: ":") else { return nil }
            return (String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
        }
        return Result(status: status, httpVersion: version, body: text, headers: headers, exitCode: process.terminationStatus,
                      errorOutput: String(decoding: errorData, as: UTF8.self))
    }
}

/// A file holding `count` bytes of `byte`, for request bodies too large for a command line.
func bodyFile(_ count: Int, byte: Character = "b") throws -> String {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("portico-body-\(UUID().uuidString)")
    try String(repeating: byte, count: count).write(to: url, atomically: true, encoding: .utf8)
    return url.path
}

/// Runs a command and returns its exit status and standard output.
@discardableResult
func runCommand(_ path: String, _ arguments: [String], currentDirectory: URL? = nil) throws -> (status: Int32, output: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: path)
    process.arguments = arguments
    if let currentDirectory { process.currentDirectoryURL = currentDirectory }
    let output = Pipe()
    process.standardOutput = output
    process.standardError = output
    try process.run()
    let data = output.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: data, as: UTF8.self))
}
