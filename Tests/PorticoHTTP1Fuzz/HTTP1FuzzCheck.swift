#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import NIOCore
import PorticoHTTP1

/// The invariants the fuzzer checks on any input. A broken one stops the process, which is
/// how libFuzzer learns of it:
/// - the parsers never crash, and never emit anything after an error, even when fed more;
/// - the outcome does not depend on how the bytes were split into reads;
/// - a head holds only valid names, values, methods and targets;
/// - body bytes account exactly for the framing: a `Content-Length` body is that many bytes,
///   starting right after its head, and every body slice is a distinct, ordered piece of the
///   input between its head and the next;
/// - a request Portico accepts, written out again from what it parsed, parses the same.
enum HTTP1FuzzCheck {
    /// One message as the checks compare it.
    struct Message: Equatable {
        var head: [UInt8]
        var framing: HTTP1BodyFraming
        var body: [UInt8] = []
        var ended = false
        var trailers: [[UInt8]] = []
    }

    struct Outcome: Equatable {
        var messages: [Message] = []
        var error: HTTP1ParseError? = nil
    }

    static func run(_ input: [UInt8]) {
        guard let seed = input.first else { return }
        let data = Array(input.dropFirst())
        for eof in [false, true] {
            let requests = self.checkSplits(data, seed: seed) { self.parseRequests($0, eof: eof, whole: data) }
            if !eof { self.checkRoundTrip(requests, data) }
            let kinds = (0..<8).map { index -> HTTP1ResponseParser.Request in
                [.other, .other, .head, .connect][Int(seed >> (index % 4)) & 3]
            }
            _ = self.checkSplits(data, seed: seed) { self.parseResponses($0, to: kinds, eof: eof, whole: data) }
        }
    }

    static func replay(paths: [String]) {
        for path in paths {
            guard let file = fopen(path, "rb") else { fatalError("cannot open \(path)") }
            var bytes: [UInt8] = []
            var chunk = [UInt8](repeating: 0, count: 4096)
            while true {
                let count = fread(&chunk, 1, chunk.count, file)
                if count <= 0 { break }
                bytes += chunk[0..<count]
            }
            fclose(file)
            self.run(bytes)
        }
        print("replayed \(paths.count) inputs, every invariant held")
    }

    // MARK: Splits

    /// Runs `parse` on the input whole, in seeded random pieces and byte by byte, and checks
    /// that all agree.
    private static func checkSplits(_ data: [UInt8], seed: UInt8, _ parse: ([[UInt8]]) -> Outcome) -> Outcome {
        let whole = parse([data])
        var state = UInt64(seed) &+ 0x9E37_79B9_7F4A_7C15
        var pieces: [[UInt8]] = []
        var start = 0
        while start < data.count {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            let length = Int((state >> 33) % 17) + 1
            pieces.append(Array(data[start..<Swift.min(data.count, start + length)]))
            start += length
        }
        var feedings = [pieces]
        if data.count <= 400 { feedings.append(data.map { [$0] }) }
        for feeding in feedings {
            let outcome = parse(feeding)
            guard outcome == whole else {
                fatalError("the outcome depends on the split: \(outcome) vs \(whole)")
            }
        }
        return whole
    }

    // MARK: Requests

    private static func parseRequests(_ chunks: [[UInt8]], eof: Bool, whole: [UInt8]) -> Outcome {
        var parser = HTTP1RequestParser(limits: HTTP1ParserLimits(maxHeadBytes: 2048, maxFields: 64))
        var tracker = HTTP1FuzzTracker(input: chunks.count == 1 ? chunks[0] : nil)
        for chunk in chunks {
            let buffer = ByteBuffer(bytes: chunk)
            tracker.base = buffer.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress) }
            parser.feed(buffer)
            while let event = parser.next() {
                switch event {
                case .head(let head):
                    self.checkHead(head)
                    tracker.head(head.bytes, framing: head.framing)
                case .body(let bytes): tracker.body(bytes)
                case .end(let trailers): tracker.end(trailers)
                case .error(let error): tracker.error(error)
                }
            }
        }
        if eof {
            parser.feedEOF()
            while let event = parser.next() {
                switch event {
                case .error(let error): tracker.error(error)
                case .end(let trailers): tracker.end(trailers)
                default: fatalError("EOF produced \(event)")
                }
            }
        }
        return tracker.outcome
    }

    private static func checkHead(_ head: HTTP1RequestHead) {
        guard !head.methodBytes.isEmpty, HTTPFieldList.isValidName(head.methodBytes) else {
            fatalError("invalid method accepted: \(head.method.debugDescription)")
        }
        guard !head.targetBytes.isEmpty, head.targetBytes.allSatisfy({ (0x21...0x7E).contains($0) }) else {
            fatalError("invalid target accepted: \(head.target.debugDescription)")
        }
        self.checkFields(head.fields)
    }

    private static func checkFields(_ fields: HTTPFieldList) {
        for index in 0..<fields.count {
            let field = fields[index]
            guard HTTPFieldList.isValidName(field.nameBytes), HTTPFieldList.isValidValue(field.valueBytes) else {
                fatalError("invalid field accepted: \(field.name.debugDescription): \(field.value.debugDescription)")
            }
        }
    }

    /// Writes each accepted request out again from its parsed view and parses that: the same
    /// method, target, fields, body and trailers must come back.
    private static func checkRoundTrip(_ outcome: Outcome, _ data: [UInt8]) {
        var parser = HTTP1RequestParser(limits: HTTP1ParserLimits(maxHeadBytes: 2048, maxFields: 64))
        parser.feed(ByteBuffer(bytes: data))
        var rewritten = ByteBuffer()
        var expected: [(HTTP1RequestHead, [UInt8], HTTPFieldList?)] = []
        var current: HTTP1RequestHead?
        var body: [UInt8] = []
        while let event = parser.next() {
            switch event {
            case .head(let head): current = head; body = []
            case .body(let bytes): body += Array(bytes.readableBytesView)
            case .end(let trailers):
                let head = current!
                // HTTP/1.0 without keep-alive would stop the re-parse after one message.
                guard head.keepAlive, !head.isUpgradeRequest else { return self.compareRoundTrip(rewritten, expected) }
                expected.append((head, body, trailers))
                rewritten.writeBytes(head.methodBytes)
                rewritten.writeString(" ")
                rewritten.writeBytes(head.targetBytes)
                rewritten.writeString(head.version == .http1_1 ? " HTTP/1.1\r\n" : " HTTP/1.0\r\n")
                head.fields.write(to: &rewritten)
                rewritten.writeString("\r\n")
                if head.framing == .chunked {
                    if !body.isEmpty {
                        rewritten.writeString(String(body.count, radix: 16) + "\r\n")
                        rewritten.writeBytes(body)
                        rewritten.writeString("\r\n")
                    }
                    rewritten.writeString("0\r\n")
                    trailers?.write(to: &rewritten)
                    rewritten.writeString("\r\n")
                } else {
                    rewritten.writeBytes(body)
                }
            case .error:
                return self.compareRoundTrip(rewritten, expected)
            }
        }
        self.compareRoundTrip(rewritten, expected)
    }

    private static func compareRoundTrip(_ rewritten: ByteBuffer, _ expected: [(HTTP1RequestHead, [UInt8], HTTPFieldList?)]) {
        var parser = HTTP1RequestParser(limits: HTTP1ParserLimits(maxHeadBytes: 4096, maxFields: 64))
        parser.feed(rewritten)
        var index = 0
        var body: [UInt8] = []
        while let event = parser.next() {
            switch event {
            case .head(let head):
                let original = expected[index].0
                guard head.methodBytes.elementsEqual(original.methodBytes),
                    head.targetBytes.elementsEqual(original.targetBytes), head.fields == original.fields
                else { fatalError("a rewritten head parses differently: \(head.fields.pairs) vs \(original.fields.pairs)") }
                body = []
            case .body(let bytes): body += Array(bytes.readableBytesView)
            case .end(let trailers):
                guard body == expected[index].1, trailers ?? HTTPFieldList() == expected[index].2 ?? HTTPFieldList() else {
                    fatalError("a rewritten body or trailers parse differently")
                }
                index += 1
            case .error(let error):
                fatalError("a rewritten request is rejected: \(error)")
            }
        }
        guard index == expected.count else { fatalError("rewritten requests lost: \(index) of \(expected.count)") }
    }

    // MARK: Responses

    private static func parseResponses(
        _ chunks: [[UInt8]],
        to kinds: [HTTP1ResponseParser.Request],
        eof: Bool,
        whole: [UInt8]
    ) -> Outcome {
        var parser = HTTP1ResponseParser(limits: HTTP1ParserLimits(maxHeadBytes: 2048, maxFields: 64))
        for kind in kinds { parser.expectResponse(to: kind) }
        var tracker = HTTP1FuzzTracker(input: chunks.count == 1 ? chunks[0] : nil)
        for chunk in chunks {
            let buffer = ByteBuffer(bytes: chunk)
            tracker.base = buffer.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress) }
            parser.feed(buffer)
            while let event = parser.next() {
                switch event {
                case .head(let head):
                    self.checkFields(head.fields)
                    tracker.head(head.bytes, framing: head.framing)
                    // An interim head has no end; the next head belongs to the same exchange.
                    if head.isInformational { tracker.interim() }
                case .body(let bytes): tracker.body(bytes)
                case .end(let trailers): tracker.end(trailers)
                case .error(let error): tracker.error(error)
                }
            }
        }
        if eof {
            parser.feedEOF()
            while let event = parser.next() {
                switch event {
                case .error(let error): tracker.error(error)
                case .end(let trailers): tracker.end(trailers)
                default: fatalError("EOF produced \(event)")
                }
            }
        }
        return tracker.outcome
    }
}
