import ArgumentParser
import Foundation
import PorticoConfig
import PorticoCore

#if canImport(Glibc)
import Glibc
#endif

/// `portico tap`: the running gateway's requests as they complete, one line each (Linkerd's
/// `tap`), read from the admin API's `GET /tap` event stream.
struct Tap: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Stream one line per completed request from the running gateway.",
        discussion: """
            Each line: status, method, path, route, backend, the endpoint or worker that answered, \
            duration, retries and trace id. A tap costs the gateway nothing while none is open; \
            a tap that cannot keep up loses lines (it says how many), and never slows requests.
            """)

    @Option(name: .long, help: "The admin address (host:port); default: the admin address in --config.")
    var admin: String?

    @OptionGroup var options: ConfigOption

    @Option(name: .long, help: "Only requests of this route (by name).")
    var route: String?

    @Option(name: .long, help: "Only these statuses: a code (404) or a class (5xx); repeat or comma-separate.")
    var status: [String] = []

    @Option(name: .long, help: "Stop after this many lines.")
    var limit: Int?

    @Flag(name: .long, help: "Print each request as the gateway's JSON object.")
    var json = false

    func validate() throws {
        if let limit, limit <= 0 { throw ValidationError("--limit takes a positive number, got \(limit)") }
        for item in status {
            do {
                _ = try TapFilter.statuses(parsing: item)
            } catch {
                throw ValidationError("\(error)")
            }
        }
        if let admin, HostPort.parse(admin) == nil {
            throw ValidationError("--admin takes host:port, got '\(admin)'")
        }
    }

    func run() throws {
        let address: HostPort
        if let admin {
            address = HostPort.parse(admin)!
        } else {
            do {
                guard let configured = try ConfigLoader.load(file: options.config).admin?.address else {
                    print("\(options.config) has no admin address: give --admin host:port")
                    throw ExitCode.failure
                }
                address = configured
            } catch let error as ConfigError {
                print("cannot read \(options.config) to find the gateway's admin address: \(error)")
                throw ExitCode.failure
            }
        }
        var query: [String] = []
        if let route { query.append("route=" + Self.escape(route)) }
        if !status.isEmpty { query.append("status=" + Self.escape(status.joined(separator: ","))) }
        let path = "/tap" + (query.isEmpty ? "" : "?" + query.joined(separator: "&"))
        var printed = 0
        do {
            try TapStreamReader.read(address, path: path) { event in
                switch event {
                case .line(let object, let raw):
                    print(json ? raw : Self.format(object))
                    // As it happens, also when the output goes to a pipe.
                    fflush(nil)
                    printed += 1
                    return limit.map { printed < $0 } ?? true
                case .dropped(let count):
                    FileHandle.standardError.write(Data("(\(count) lines dropped: the tap did not keep up)\n".utf8))
                    return true
                }
            }
        } catch let failure as AdminClient.Failure {
            print("\(failure)")
            throw ExitCode.failure
        }
    }

    static func escape(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-._~,"))) ?? text
    }

    /// `200 GET /hello route=hello backend=function:hello upstream=127.0.0.1:40123 1.3ms retries=0 trace=-`
    static func format(_ object: [String: Any]) -> String {
        func text(_ key: String) -> String {
            switch object[key] {
            case let value as String: return value
            case let value as NSNumber: return value.stringValue
            default: return "-"
            }
        }
        let micros = (object["duration_us"] as? NSNumber)?.doubleValue ?? 0
        let duration = micros >= 1000 ? String(format: "%.1fms", micros / 1000) : "\(Int(micros))µs"
        return "\(text("status")) \(text("method")) \(text("path")) route=\(text("route")) backend=\(text("backend")) "
            + "upstream=\(text("upstream")) \(duration) retries=\(text("retries")) trace=\(text("trace_id"))"
    }
}

/// Reads `GET /tap`'s server-sent events from the admin API with a plain socket (HTTP/1.0, so
/// the body is whatever comes until the server closes).
enum TapStreamReader {
    enum Event {
        case line([String: Any], raw: String)
        case dropped(Int)
    }

    /// Calls `handle` for each event until it returns false or the stream ends.
    static func read(_ address: HostPort, path: String, handle: (Event) -> Bool) throws {
        let host = address.host == "0.0.0.0" || address.host.isEmpty ? "127.0.0.1" : address.host == "::" ? "::1" : address.host
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, String(address.port), &hints, &list) == 0, let first = list else {
            throw AdminClient.Failure.failed("cannot resolve \(host)")
        }
        defer { freeaddrinfo(list) }
        let fd = socket(first.pointee.ai_family, first.pointee.ai_socktype, first.pointee.ai_protocol)
        guard fd >= 0 else { throw AdminClient.Failure.failed("socket: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        guard connect(fd, first.pointee.ai_addr, first.pointee.ai_addrlen) == 0 else {
            let reason = String(cString: strerror(errno))
            if errno == ECONNREFUSED { throw AdminClient.Failure.refused("nothing listens on \(address) (\(reason)): is the gateway running?") }
            throw AdminClient.Failure.failed("cannot connect to \(address): \(reason)")
        }
        let request = Array("GET \(path) HTTP/1.0\r\nHost: \(address)\r\nAccept: text/event-stream\r\n\r\n".utf8)
        var sent = 0
        while sent < request.count {
            let n = request[sent...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { throw AdminClient.Failure.failed("cannot send to \(address): \(String(cString: strerror(errno)))") }
            sent += n
        }
        var received: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        var headDone = false
        while true {
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else {
                if !headDone { throw AdminClient.Failure.failed("\(address) closed without answering") }
                return
            }
            received.append(contentsOf: chunk[..<n])
            if !headDone {
                guard let end = find([13, 10, 13, 10], in: received) else { continue }
                let head = String(decoding: received[..<end], as: UTF8.self)
                let statusLine = head.split(separator: "\r\n").first ?? ""
                let parts = statusLine.split(separator: " ")
                guard parts.count >= 2, parts[1] == "200" else {
                    // An error answer: its body says why (a bad filter).
                    while true {
                        let m = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                        guard m > 0 else { break }
                        received.append(contentsOf: chunk[..<m])
                    }
                    let body = String(decoding: received[(end + 4)...], as: UTF8.self)
                    let message = (try? JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any])?["error"] as? String
                    throw AdminClient.Failure.failed("the gateway refused the tap: \(message ?? String(statusLine))")
                }
                received.removeFirst(end + 4)
                headDone = true
            }
            // Events end with a blank line.
            while let end = find([10, 10], in: received) {
                let text = String(decoding: received[..<end], as: UTF8.self)
                received.removeFirst(end + 2)
                guard let event = parse(text) else { continue }
                if !handle(event) { return }
            }
        }
    }

    static func parse(_ text: String) -> Event? {
        var name = "message"
        var data = ""
        for line in text.split(separator: "\n") {
            if line.hasPrefix(":") { continue }
            if line.hasPrefix("event: ") { name = String(line.dropFirst(7)) }
            if line.hasPrefix("data: ") { data += line.dropFirst(6) }
        }
        guard !data.isEmpty, let object = try? JSONSerialization.jsonObject(with: Data(data.utf8)) as? [String: Any] else { return nil }
        if name == "dropped" { return .dropped((object["dropped"] as? Int) ?? 0) }
        return .line(object, raw: data)
    }

    static func find(_ pattern: [UInt8], in bytes: [UInt8]) -> Int? {
        guard bytes.count >= pattern.count else { return nil }
        for start in 0...(bytes.count - pattern.count) where bytes[start] == pattern[0] {
            if Array(bytes[start..<(start + pattern.count)]) == pattern { return start }
        }
        return nil
    }
}
