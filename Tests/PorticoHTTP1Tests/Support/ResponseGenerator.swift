import PorticoHTTP1

/// Valid upstream responses of many shapes, with the requests they answer.
struct ResponseGenerator {
    /// Field names, values, bodies and mutations come from the request generator.
    var parts: RequestGenerator

    init(seed: UInt64) { self.parts = RequestGenerator(seed: seed) }

    /// One or two responses back to back, and what each answers.
    mutating func exchange() -> (bytes: [UInt8], requests: [HTTP1ResponseParser.Request]) {
        var bytes: [UInt8] = []
        var requests: [HTTP1ResponseParser.Request] = []
        let count = Int.random(in: 1...2, using: &self.parts.random)
        for index in 0..<count {
            let request: HTTP1ResponseParser.Request = self.parts.random.chance(20) ? .head : .other
            requests.append(request)
            if self.parts.random.chance(15) {
                bytes += Array("HTTP/1.1 \(self.parts.random.pick(["100 Continue", "103 Early Hints"]))\r\n\r\n".utf8)
            }
            bytes += self.response(to: request, last: index == count - 1)
        }
        return (bytes, requests)
    }

    private mutating func response(to request: HTTP1ResponseParser.Request, last: Bool) -> [UInt8] {
        let status = self.parts.random.pick([200, 200, 201, 204, 301, 304, 404, 500, 503])
        let http10 = self.parts.random.chance(10)
        var fields: [(String, String)] = []
        for _ in 0..<Int.random(in: 0...5, using: &self.parts.random) {
            fields.append((self.parts.fieldName(), self.parts.fieldValue()))
        }
        if http10 { fields.append(("Connection", "keep-alive")) }
        var body: [UInt8] = []
        let bodiless = request == .head || status == 204 || status == 304
        let choice = Int.random(in: 0..<3, using: &self.parts.random)
        if bodiless {
            if choice == 0 {
                // The length the body would have had: allowed, and no body follows.
                fields.append(("Content-Length", self.parts.padded(String(Int.random(in: 0...99, using: &self.parts.random)))))
            }
        } else if choice == 1 && !http10 {
            fields.append(("Transfer-Encoding", self.parts.padded("chunked")))
            body = self.parts.chunkedBody()
        } else if choice == 2 && last {
            // No length: the body runs until the upstream closes.
            body = self.parts.bodyBytes()
        } else {
            let content = self.parts.bodyBytes()
            fields.append(("Content-Length", self.parts.padded(String(content.count))))
            body = content
        }
        fields.shuffle(using: &self.parts.random)
        let head = "HTTP/1.\(http10 ? 0 : 1) \(status) Reason\r\n" + fields.map { "\($0.0):\($0.1)\r\n" }.joined() + "\r\n"
        return Array(head.utf8) + body
    }
}
