import NIOCore
import NIOEmbedded
import NIOHTTP1
import PorticoHTTP1

/// NIO's `HTTPResponseDecoder` (llhttp, strict) in an `EmbeddedChannel`, told of each request
/// by an outbound write as a client pipeline would: the oracle for upstream responses.
enum LLHTTPResponseOracle {
    static func parse(_ chunks: [[UInt8]], to requests: [HTTP1ResponseParser.Request], eof: Bool) -> LLHTTPOracle.Outcome {
        let decoder = HTTPResponseDecoder(leftOverBytesStrategy: .dropBytes, informationalResponseStrategy: .forward)
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(decoder))
        for request in requests {
            let method: HTTPMethod = request == .head ? .HEAD : request == .connect ? .CONNECT : .GET
            try! channel.writeOutbound(HTTPClientRequestPart.head(HTTPRequestHead(version: .http1_1, method: method, uri: "/")))
        }
        var outcome = LLHTTPOracle.Outcome()
        func drain() {
            while let part = try? channel.readInbound(as: HTTPClientResponsePart.self) {
                switch part {
                case .head(let head):
                    outcome.messages.append(
                        ParsedMessage(
                            startLine: "\(head.status.code)",
                            fields: head.headers.map { ParsedMessage.Field(name: $0.name, value: LLHTTPOracle.trimmed($0.value)) }
                        )
                    )
                case .body(let bytes):
                    outcome.messages[outcome.messages.count - 1].body += Array(bytes.readableBytesView)
                case .end(let trailers):
                    outcome.messages[outcome.messages.count - 1].ended = true
                    outcome.messages[outcome.messages.count - 1].trailers = trailers.map { list in
                        list.map { ParsedMessage.Field(name: $0.name, value: LLHTTPOracle.trimmed($0.value)) }
                    }
                }
            }
        }
        for chunk in chunks {
            do {
                try channel.writeInbound(ByteBuffer(bytes: chunk))
            } catch {
                outcome.error = error
                break
            }
            drain()
        }
        if eof && outcome.error == nil {
            do {
                _ = try channel.finish()
            } catch {
                outcome.error = error
            }
        } else {
            _ = try? channel.finish()
        }
        drain()
        return outcome
    }
}
