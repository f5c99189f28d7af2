import NIOCore
import PorticoHTTP1
import XCTest

/// Ways of cutting one input into the reads a socket might deliver.
enum Feeding {
    /// The input whole, each two-piece split, and one byte at a time.
    static func everySplit(_ bytes: [UInt8]) -> [[[UInt8]]] {
        var feedings: [[[UInt8]]] = [[bytes]]
        if bytes.count > 1 {
            for cut in 1..<bytes.count {
                feedings.append([Array(bytes[..<cut]), Array(bytes[cut...])])
            }
            feedings.append(bytes.map { [$0] })
        }
        return feedings
    }

    static func parseRequests(
        _ chunks: [[UInt8]],
        eof: Bool = false,
        limits: HTTP1ParserLimits = HTTP1ParserLimits()
    ) -> ParseOutcome {
        var parser = HTTP1RequestParser(limits: limits)
        var outcome = ParseOutcome()
        func drain() {
            while let event = parser.next() {
                XCTAssertNil(outcome.error, "an event came after an error: \(event)")
                switch event {
                case .head(let head): outcome.head(ParsedMessage(head))
                case .body(let bytes): outcome.body(bytes)
                case .end(let trailers): outcome.end(trailers)
                case .error(let error): outcome.error = error
                }
            }
        }
        for chunk in chunks {
            parser.feed(ByteBuffer(bytes: chunk))
            drain()
        }
        if eof {
            parser.feedEOF()
            drain()
        }
        outcome.awaitingUpgrade = parser.isAwaitingUpgradeDecision
        outcome.finished = parser.isFinished
        outcome.idle = parser.isIdle
        return outcome
    }

    static func parseResponses(
        _ chunks: [[UInt8]],
        to requests: [HTTP1ResponseParser.Request],
        eof: Bool = false
    ) -> ParseOutcome {
        var parser = HTTP1ResponseParser()
        for request in requests { parser.expectResponse(to: request) }
        var outcome = ParseOutcome()
        func drain() {
            while let event = parser.next() {
                XCTAssertNil(outcome.error, "an event came after an error: \(event)")
                switch event {
                case .head(let head): outcome.head(ParsedMessage(head))
                case .body(let bytes): outcome.body(bytes)
                case .end(let trailers): outcome.end(trailers)
                case .error(let error): outcome.error = error
                }
            }
        }
        for chunk in chunks {
            parser.feed(ByteBuffer(bytes: chunk))
            drain()
        }
        if eof {
            parser.feedEOF()
            drain()
        }
        outcome.awaitingUpgrade = parser.isAwaitingUpgradeDecision
        outcome.finished = parser.isFinished
        outcome.idle = parser.isIdle
        return outcome
    }

    /// Parses `input` fed whole, split at every byte and byte by byte, checks that every way
    /// gives the same outcome, and returns it.
    @discardableResult
    static func requests(
        _ input: String,
        eof: Bool = false,
        limits: HTTP1ParserLimits = HTTP1ParserLimits(),
        file: StaticString = #filePath,
        line: UInt = #line
    ) -> ParseOutcome {
        self.requests(Array(input.utf8), eof: eof, limits: limits, file: file, line: line)
    }

    @discardableResult
    static func requests(
        _ input: [UInt8],
        eof: Bool = false,
        limits: HTTP1ParserLimits = HTTP1ParserLimits(),
        file: StaticString = #filePath,
        line: UInt = #line
    ) -> ParseOutcome {
        let whole = self.parseRequests([input], eof: eof, limits: limits)
        for feeding in self.everySplit(input).dropFirst() {
            let outcome = self.parseRequests(feeding, eof: eof, limits: limits)
            if outcome != whole {
                XCTFail(
                    "fed in \(feeding.count) pieces \(feeding.map(\.count).prefix(3)): \(outcome), whole: \(whole)",
                    file: file,
                    line: line
                )
                break
            }
        }
        return whole
    }

    @discardableResult
    static func responses(
        _ input: String,
        to requests: [HTTP1ResponseParser.Request] = [.other],
        eof: Bool = false,
        file: StaticString = #filePath,
        line: UInt = #line
    ) -> ParseOutcome {
        let bytes = Array(input.utf8)
        let whole = self.parseResponses([bytes], to: requests, eof: eof)
        for feeding in self.everySplit(bytes).dropFirst() {
            let outcome = self.parseResponses(feeding, to: requests, eof: eof)
            if outcome != whole {
                XCTFail("fed in \(feeding.count) pieces: \(outcome), whole: \(whole)", file: file, line: line)
                break
            }
        }
        return whole
    }
}
