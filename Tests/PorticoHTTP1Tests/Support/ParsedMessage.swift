import NIOCore
import PorticoHTTP1

/// One message as a test sees it, whichever parser produced it.
struct ParsedMessage: Equatable, CustomStringConvertible {
    struct Field: Equatable {
        var name: String
        var value: String
    }

    /// The method and target for a request, the status for a response.
    var startLine: String
    var fields: [Field]
    var body: [UInt8] = []
    var ended = false
    var trailers: [Field]? = nil

    var description: String {
        let shownBody = String(decoding: self.body.prefix(40), as: UTF8.self)
        return "\(self.startLine) \(self.fields.map { "\($0.name): \($0.value)" }) body(\(self.body.count))=\(shownBody.debugDescription)"
            + (self.ended ? " end" : "") + (self.trailers.map { " trailers \($0)" } ?? "")
    }

    init(startLine: String, fields: [Field]) {
        self.startLine = startLine
        self.fields = fields
    }

    init(_ head: HTTP1RequestHead) {
        self.startLine = "\(head.method) \(head.target)"
        self.fields = ParsedMessage.fields(head.fields)
    }

    init(_ head: HTTP1ResponseHead) {
        self.startLine = "\(head.status)"
        self.fields = ParsedMessage.fields(head.fields)
    }

    static func fields(_ list: HTTPFieldList) -> [Field] {
        list.pairs.map { Field(name: $0.name, value: $0.value) }
    }
}

/// Everything a parser made of one input.
struct ParseOutcome: Equatable, CustomStringConvertible {
    var messages: [ParsedMessage] = []
    var error: HTTP1ParseError? = nil
    var awaitingUpgrade = false
    var finished = false
    var idle = false

    var description: String {
        "\(self.messages.map(\.description))" + (self.error.map { " error \($0)" } ?? "")
            + (self.awaitingUpgrade ? " awaiting-upgrade" : "") + (self.finished ? " finished" : "")
    }

    mutating func head(_ message: ParsedMessage) {
        self.messages.append(message)
    }

    mutating func body(_ bytes: ByteBuffer) {
        self.messages[self.messages.count - 1].body += Array(bytes.readableBytesView)
    }

    mutating func end(_ trailers: HTTPFieldList?) {
        self.messages[self.messages.count - 1].ended = true
        self.messages[self.messages.count - 1].trailers = trailers.map(ParsedMessage.fields)
    }
}
