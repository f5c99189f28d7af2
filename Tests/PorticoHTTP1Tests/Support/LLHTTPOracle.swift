import NIOCore
import NIOEmbedded
import NIOHTTP1

/// NIO's `HTTPRequestDecoder` (llhttp, strict mode) run in an `EmbeddedChannel`: the second
/// parser of the differential test.
enum LLHTTPOracle {
    struct Outcome {
        var messages: [ParsedMessage] = []
        /// Whether the last head asked to switch protocols (NIO then stops parsing).
        var upgraded = false
        var error: (any Error)? = nil
    }

    /// The methods llhttp knows for `HTTP/` requests; it rejects every other token.
    static let knownMethods: Set<String> = [
        "DELETE", "GET", "HEAD", "POST", "PUT", "CONNECT", "OPTIONS", "TRACE", "COPY", "LOCK", "MKCOL", "MOVE",
        "PROPFIND", "PROPPATCH", "SEARCH", "UNLOCK", "BIND", "REBIND", "UNBIND", "ACL", "REPORT", "MKACTIVITY",
        "CHECKOUT", "MERGE", "M-SEARCH", "NOTIFY", "SUBSCRIBE", "UNSUBSCRIBE", "PATCH", "PURGE", "MKCALENDAR",
        "LINK", "UNLINK", "SOURCE", "QUERY",
    ]

    /// llhttp hands out a value with its trailing whitespace; RFC 9110 §5.5 says that
    /// whitespace is not part of the value, and Portico drops it. Compare without it.
    static func trimmed(_ value: String) -> String {
        var scalars = Substring(value)
        while let last = scalars.last, last == " " || last == "\t" { scalars.removeLast() }
        return String(scalars)
    }

    static func parse(_ chunks: [[UInt8]]) -> Outcome {
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .dropBytes)))
        var outcome = Outcome()
        func drain() {
            while let part = try? channel.readInbound(as: HTTPServerRequestPart.self) {
                switch part {
                case .head(let head):
                    var message = ParsedMessage(
                        startLine: "\(head.method.rawValue) \(head.uri)",
                        fields: head.headers.map { ParsedMessage.Field(name: $0.name, value: trimmed($0.value)) }
                    )
                    message.body = []
                    outcome.messages.append(message)
                    outcome.upgraded =
                        head.method == .CONNECT
                        || (head.headers.contains(name: "upgrade")
                            && head.headers[canonicalForm: "connection"].contains { $0.lowercased() == "upgrade" })
                case .body(let bytes):
                    outcome.messages[outcome.messages.count - 1].body += Array(bytes.readableBytesView)
                case .end(let trailers):
                    outcome.messages[outcome.messages.count - 1].ended = true
                    outcome.messages[outcome.messages.count - 1].trailers = trailers.map { list in
                        list.map { ParsedMessage.Field(name: $0.name, value: trimmed($0.value)) }
                    }
                }
            }
        }
        for chunk in chunks {
            do {
                try channel.writeInbound(ByteBuffer(bytes: chunk))
            } catch {
                outcome.error = error
                drain()
                break
            }
            drain()
        }
        _ = try? channel.finish()
        return outcome
    }
}
