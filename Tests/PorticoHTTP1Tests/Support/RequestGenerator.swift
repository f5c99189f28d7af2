/// A seeded generator (SplitMix64), so every run of the differential test sees the same inputs
/// and a failure can be replayed.
struct SeededRandom: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) { self.state = seed }

    mutating func next() -> UInt64 {
        self.state &+= 0x9E37_79B9_7F4A_7C15
        var z = self.state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    mutating func chance(_ percent: Int) -> Bool { Int.random(in: 0..<100, using: &self) < percent }

    mutating func pick<T>(_ from: [T]) -> T { from[Int.random(in: 0..<from.count, using: &self)] }
}

/// Valid requests of many shapes, and mutations of them.
struct RequestGenerator {
    var random: SeededRandom
    /// Short requests (few fields, small bodies), cheap enough to split at every byte.
    var compact = false

    init(seed: UInt64) { self.random = SeededRandom(seed: seed) }

    // MARK: Valid requests

    /// One to three valid requests, back to back.
    mutating func pipeline() -> [UInt8] {
        (0..<Int.random(in: 1...3, using: &self.random)).flatMap { _ in self.request() }
    }

    mutating func request() -> [UInt8] {
        let method = self.random.pick(["GET", "GET", "POST", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "PURGE", "PROPFIND"])
        let http10 = self.random.chance(10)
        var target = self.originTarget()
        if method == "OPTIONS" && self.random.chance(30) { target = "*" }
        if self.random.chance(5) { target = "http://example.com" + (target == "*" ? "/" : target) }
        var lines = ["\(method) \(target) HTTP/1.\(http10 ? 0 : 1)"]
        var fields: [(String, String)] = []
        if self.random.chance(90) { fields.append((self.random.pick(["Host", "host", "HOST"]), self.host())) }
        for _ in 0..<Int.random(in: 0...(self.compact ? 2 : 6), using: &self.random) {
            fields.append((self.fieldName(), self.fieldValue()))
        }
        if http10 && self.random.chance(50) { fields.append(("Connection", "keep-alive")) }
        if !http10 && self.random.chance(5) { fields.append(("Connection", "close")) }

        var body: [UInt8] = []
        switch Int.random(in: 0..<3, using: &self.random) {
        case 1:
            let content = self.bodyBytes()
            fields.append((self.random.pick(["Content-Length", "content-length"]), self.padded(String(content.count))))
            body = content
        case 2 where !http10:
            fields.append((self.random.pick(["Transfer-Encoding", "transfer-encoding"]), self.padded(self.random.pick(["chunked", "Chunked"]))))
            body = self.chunkedBody()
        default:
            break
        }
        fields.shuffle(using: &self.random)
        lines += fields.map { "\($0.0):\($0.1)" }
        return Array((lines.joined(separator: "\r\n") + "\r\n\r\n").utf8) + body
    }

    private mutating func originTarget() -> String {
        let segmentBytes = Array("abcXYZ019-._~!$&'()*+,;=:@".utf8).map { String(UnicodeScalar($0)) } + ["%2F", "%20"]
        var target = ""
        for _ in 0..<Int.random(in: 1...(self.compact ? 1 : 3), using: &self.random) {
            target += "/" + (0..<Int.random(in: 0...6, using: &self.random)).map { _ in self.random.pick(segmentBytes) }.joined()
        }
        if self.random.chance(30) { target += "?q=" + self.random.pick(["1", "a%20b", "x|y", "{z}", "\"quoted\"", "a?b"]) }
        return target
    }

    private mutating func host() -> String {
        self.random.pick(["example.com", "api.example.com:8080", "127.0.0.1", "[::1]:443", "localhost", ""])
    }

    mutating func fieldName() -> String {
        if self.random.chance(60) {
            return self.random.pick(["Accept", "User-Agent", "X-Request-Id", "x-forwarded-for", "Cache-Control", "Cookie", "If-None-Match", "X-Empty"])
        }
        let tokenBytes = Array("abcdefXYZ0123456789!#$%&'*+-.^_`|~".utf8).map { String(UnicodeScalar($0)) }
        return (0..<Int.random(in: 1...12, using: &self.random)).map { _ in self.random.pick(tokenBytes) }.joined()
    }

    mutating func fieldValue() -> String {
        let valueBytes = Array("abcXYZ0189 !\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~".utf8).map { String(UnicodeScalar($0)) }
        var value = (0..<Int.random(in: 0...(self.compact ? 8 : 24), using: &self.random)).map { _ in self.random.pick(valueBytes) }.joined()
        value = String(value.drop { $0 == " " }.reversed().drop { $0 == " " }.reversed())
        return self.padded(value)
    }

    /// Surrounds a value with optional whitespace, as senders may (RFC 9110 §5.5: OWS).
    mutating func padded(_ value: String) -> String {
        self.random.pick(["", " ", " ", "\t", "  "]) + value + self.random.pick(["", "", " ", "\t"])
    }

    mutating func bodyBytes() -> [UInt8] {
        (0..<Int.random(in: 0...(self.compact ? 12 : 40), using: &self.random)).map { _ in UInt8.random(in: 0...255, using: &self.random) }
    }

    mutating func chunkedBody() -> [UInt8] {
        var body: [UInt8] = []
        for _ in 0..<Int.random(in: 0...(self.compact ? 1 : 3), using: &self.random) {
            let data = (0..<Int.random(in: 1...(self.compact ? 8 : 20), using: &self.random)).map { _ in UInt8.random(in: 0...255, using: &self.random) }
            var size = String(data.count, radix: 16, uppercase: self.random.chance(50))
            if self.random.chance(20) { size = "00" + size }
            body += Array((size + self.chunkExtension() + "\r\n").utf8) + data + Array("\r\n".utf8)
        }
        body += Array(("0" + self.chunkExtension() + "\r\n").utf8)
        if self.random.chance(30) {
            body += Array("X-Checksum: \(Int.random(in: 0...999, using: &self.random))\r\n".utf8)
        }
        return body + Array("\r\n".utf8)
    }

    private mutating func chunkExtension() -> String {
        self.random.chance(20) ? self.random.pick([";a", ";name=value", ";q=\"quoted value\"", ";a;b=c"]) : ""
    }

    // MARK: Mutations

    /// `input` with one to three random edits of the kinds that break parsers.
    mutating func mutate(_ input: [UInt8]) -> [UInt8] {
        var bytes = input
        for _ in 0..<Int.random(in: 1...3, using: &self.random) where !bytes.isEmpty {
            let position = Int.random(in: 0..<bytes.count, using: &self.random)
            switch Int.random(in: 0..<8, using: &self.random) {
            case 0:
                bytes[position] = UInt8.random(in: 0...255, using: &self.random)
            case 1:
                bytes.insert(self.random.pick(Array("\r\n\0 :\t,;0a\"".utf8) + [0x80, 0x7F]), at: position)
            case 2:
                bytes.remove(at: position)
            case 3:
                bytes = self.duplicateLine(bytes)
            case 4:
                bytes = self.changeNumber(bytes)
            case 5:
                bytes = self.insertLine(bytes, self.random.pick(RequestGenerator.framingLines))
            case 6:
                bytes.insert(contentsOf: Array(self.random.pick(["\r\n", "\r", "\n", " \r\n", "\r\n\r\n"]).utf8), at: position)
            default:
                bytes[position] = self.random.pick(Array("\r\n\0 :\t".utf8))
            }
        }
        return bytes
    }

    /// Field lines that change framing or hide it.
    static let framingLines = [
        "Transfer-Encoding: chunked", "Content-Length: 3", "Content-Length: 0", "Transfer-Encoding : chunked",
        "Transfer-Encoding: xchunked", "Transfer-Encoding: chunked, chunked", "Transfer-Encoding:\tchunked",
        "Content-Length: +3", "Content-Length: 03", "Host: other.example", " folded", "\tfolded",
        "Transfer-Encoding: identity", "Connection: close", "Connection: upgrade\r\nUpgrade: h2c", "X: a\rb",
    ]

    private mutating func lineStarts(_ bytes: [UInt8]) -> [Int] {
        var starts: [Int] = []
        for index in 1..<max(bytes.count, 1) where bytes[index - 1] == UInt8(ascii: "\n") {
            starts.append(index)
        }
        return starts
    }

    private mutating func duplicateLine(_ bytes: [UInt8]) -> [UInt8] {
        let starts = self.lineStarts(bytes)
        guard starts.count >= 2 else { return bytes }
        let index = Int.random(in: 0..<(starts.count - 1), using: &self.random)
        let line = Array(bytes[starts[index]..<starts[index + 1]])
        var result = bytes
        result.insert(contentsOf: line, at: starts[index + 1])
        return result
    }

    private mutating func insertLine(_ bytes: [UInt8], _ line: String) -> [UInt8] {
        let starts = self.lineStarts(bytes)
        guard !starts.isEmpty else { return bytes }
        var result = bytes
        result.insert(contentsOf: Array((line + "\r\n").utf8), at: self.random.pick(starts))
        return result
    }

    /// Replaces one run of digits (a length, a chunk size) with another number.
    private mutating func changeNumber(_ bytes: [UInt8]) -> [UInt8] {
        let digitPositions = bytes.indices.filter { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[$0]) }
        guard let position = digitPositions.isEmpty ? nil : self.random.pick(digitPositions) else { return bytes }
        var end = position
        while end < bytes.count && (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[end]) { end += 1 }
        let replacement = self.random.pick(["0", "1", "2", "5", "10", "17", "00", "-1", "9999999999999999999999", "ffff"])
        var result = bytes
        result.replaceSubrange(position..<end, with: Array(replacement.utf8))
        return result
    }
}
