import NIOCore
import PorticoHTTP1

/// Records one parse's events for `HTTP1FuzzCheck`, and checks as they come that they follow
/// each other legally and that body bytes account for the framing.
struct HTTP1FuzzTracker {
    private(set) var outcome = HTTP1FuzzCheck.Outcome()
    /// The input, when it was fed whole: then every slice handed out must sit in it, in order.
    private let input: [UInt8]?
    /// Where the buffer being parsed starts in memory.
    var base: UInt = 0
    /// The input offset just past the last slice handed out.
    private var position = 0
    /// Whether the last head was an interim response, which has no end.
    private var lastWasInterim = false

    init(input: [UInt8]?) {
        self.input = input
    }

    mutating func head(_ bytes: ByteBuffer, framing: HTTP1BodyFraming) {
        self.mustBeLive("a head")
        if let last = self.outcome.messages.last, !last.ended, !self.lastWasInterim {
            fatalError("a head came before the previous message ended")
        }
        self.lastWasInterim = false
        let before = self.position
        if let offset = self.place(bytes, what: "head"), offset < before {
            fatalError("a head overlaps what came before it")
        }
        self.outcome.messages.append(HTTP1FuzzCheck.Message(head: Array(bytes.readableBytesView), framing: framing))
    }

    mutating func interim() {
        self.lastWasInterim = true
    }

    mutating func body(_ bytes: ByteBuffer) {
        self.mustBeLive("body bytes")
        guard var message = self.outcome.messages.last, !message.ended, !self.lastWasInterim else {
            fatalError("body bytes outside a message")
        }
        let start = self.position
        if let offset = self.place(bytes, what: "body") {
            switch message.framing {
            case .none:
                fatalError("body bytes for a message without a body")
            case .length, .untilClose:
                // These bodies are the bytes right after the head, with nothing in between.
                if offset != start { fatalError("a body slice does not follow what came before it") }
            case .chunked:
                if offset < start { fatalError("a chunk's bytes overlap what came before them") }
            }
        }
        message.body += Array(bytes.readableBytesView)
        if case .length(let length) = message.framing, message.body.count > length {
            fatalError("more body bytes than Content-Length")
        }
        self.outcome.messages[self.outcome.messages.count - 1] = message
    }

    mutating func end(_ trailers: HTTPFieldList?) {
        self.mustBeLive("an end")
        guard var message = self.outcome.messages.last, !message.ended, !self.lastWasInterim else {
            fatalError("an end outside a message")
        }
        switch message.framing {
        case .length(let length) where message.body.count != length:
            fatalError("a body of \(message.body.count) bytes ended, Content-Length said \(length)")
        case .none where !message.body.isEmpty:
            fatalError("a message without a body had body bytes")
        default:
            break
        }
        if let trailers {
            guard message.framing == .chunked else { fatalError("trailers without a chunked body") }
            for index in 0..<trailers.count {
                let field = trailers[index]
                guard HTTPFieldList.isValidName(field.nameBytes), HTTPFieldList.isValidValue(field.valueBytes) else {
                    fatalError("an invalid trailer accepted")
                }
                message.trailers.append(Array(field.nameBytes) + [0x3A] + Array(field.valueBytes))
            }
            _ = self.place(trailers.storage, what: "trailers")
        }
        message.ended = true
        self.outcome.messages[self.outcome.messages.count - 1] = message
    }

    mutating func error(_ error: HTTP1ParseError) {
        self.mustBeLive("a second error")
        guard [400, 431, 501, 502].contains(error.status) else { fatalError("an error with status \(error.status)") }
        self.outcome.error = error
    }

    private func mustBeLive(_ what: String) {
        if let error = self.outcome.error { fatalError("\(what) came after the error \(error)") }
    }

    /// Where `bytes` sits in the whole input, checking it really is that part of it, or nil
    /// when the input was fed in pieces.
    private mutating func place(_ bytes: ByteBuffer, what: String) -> Int? {
        guard let input = self.input else { return nil }
        let address = bytes.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress) }
        guard bytes.readableBytes > 0 else { return nil }
        guard address >= self.base, Int(address - self.base) + bytes.readableBytes <= input.count else {
            fatalError("a \(what) slice is not part of the input")
        }
        let offset = Int(address - self.base)
        guard input[offset..<offset + bytes.readableBytes].elementsEqual(bytes.readableBytesView) else {
            fatalError("a \(what) slice differs from the input")
        }
        self.position = offset + bytes.readableBytes
        return offset
    }
}
