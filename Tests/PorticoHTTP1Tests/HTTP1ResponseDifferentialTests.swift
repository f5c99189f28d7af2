import NIOHTTP1
import PorticoHTTP1
import XCTest

/// Portico's response parser against llhttp (NIO's `HTTPResponseDecoder`) on generated and
/// mutated upstream responses, fed whole and in pieces, with the upstream closing at the end.
/// The rule is the request test's: whatever Portico hands out, llhttp hands out the same;
/// Portico may reject more, never less, except where `exception(...)` says why.
final class HTTP1ResponseDifferentialTests: XCTestCase {
    private struct Tally {
        var inputs = 0
        var bothAccepted = 0
        var porticoStricter = 0
        var bothRejected = 0
        var exceptions: [String: Int] = [:]
    }

    func testGeneratedResponsesParseAlikeInBoth() {
        var generator = ResponseGenerator(seed: 0x5eed_0101)
        var tally = Tally()
        for _ in 0..<80 {
            let (bytes, requests) = generator.exchange()
            let outcome = self.compare(bytes, requests, &tally)
            XCTAssertNil(outcome.error, "Portico rejected a valid response: \(String(decoding: bytes, as: UTF8.self).debugDescription)")
            if (self.testRun?.failureCount ?? 0) > 3 { break }
        }
        print("response differential, valid: \(tally)")
        XCTAssertEqual(tally.porticoStricter, 0)
    }

    func testMutatedResponsesNeverMakePorticoAcceptWhatLLHTTPRejects() {
        var generator = ResponseGenerator(seed: 0x5eed_0102)
        var tally = Tally()
        for _ in 0..<200 {
            let (bytes, requests) = generator.exchange()
            self.compare(generator.parts.mutate(bytes), requests, &tally)
            if (self.testRun?.failureCount ?? 0) > 3 { break }
        }
        print("response differential, mutated: \(tally)")
        XCTAssertGreaterThan(tally.bothAccepted, 20)
        XCTAssertGreaterThan(tally.bothRejected, 50)
    }

    @discardableResult
    private func compare(
        _ input: [UInt8],
        _ requests: [HTTP1ResponseParser.Request],
        _ tally: inout Tally,
        file: StaticString = #filePath,
        line: UInt = #line
    ) -> ParseOutcome {
        tally.inputs += 1
        let whole = Feeding.parseResponses([input], to: requests, eof: true)
        var random = SeededRandom(seed: UInt64(input.count))
        let feedings = [[input], input.map { [$0] }] + (0..<12).map { _ -> [[UInt8]] in
            let cut = Int.random(in: 0...input.count, using: &random)
            return [Array(input[..<cut]), Array(input[cut...])]
        }
        for feeding in feedings {
            let portico = Feeding.parseResponses(feeding, to: requests, eof: true)
            guard portico == whole else {
                XCTFail("Portico depends on the split \(feeding.map(\.count)): \(portico) vs \(whole)", file: file, line: line)
                return whole
            }
            var oracle = LLHTTPResponseOracle.parse(feeding, to: requests, eof: true)
            var violation = self.violation(portico, oracle, &tally)
            if violation != nil, let spaced = Differential.spacesForTabsInFramingFields(input) {
                // As for requests: llhttp takes SP but not HTAB after a framing value.
                oracle = LLHTTPResponseOracle.parse(Differential.cut(spaced, like: feeding), to: requests, eof: true)
                violation = self.violation(portico, oracle, &tally)
                if violation == nil { tally.exceptions["HTAB after a framing value", default: 0] += 1 }
            }
            if let violation {
                XCTFail(
                    "\(violation)\ninput: \(String(decoding: input, as: UTF8.self).debugDescription) to \(requests)\nsplit: \(feeding.map(\.count))\nportico: \(portico)\nllhttp: \(oracle.messages) \(oracle.error.map { "\($0)" } ?? "no error")",
                    file: file,
                    line: line
                )
                return whole
            }
        }
        return whole
    }

    private func violation(_ portico: ParseOutcome, _ oracle: LLHTTPOracle.Outcome, _ tally: inout Tally) -> String? {
        if let disagreement = Differential.disagreement(portico.messages, oracle.messages) {
            if let reason = self.exception(portico, oracle) {
                tally.exceptions[reason, default: 0] += 1
                return nil
            }
            return disagreement.reason
        }
        switch (portico.error, oracle.error) {
        case (nil, nil):
            tally.bothAccepted += 1
        case (.some, nil):
            tally.porticoStricter += 1
        case (.some, .some):
            tally.bothRejected += 1
        case (nil, .some(let error)):
            if let reason = self.exception(portico, oracle) {
                tally.exceptions[reason, default: 0] += 1
            } else if !portico.awaitingUpgrade {
                // The upstream closed, so Portico has judged every byte, and took them all.
                return "llhttp rejected (\(error)) what Portico accepted"
            }
        }
        return nil
    }

    private func exception(_ portico: ParseOutcome, _ oracle: LLHTTPOracle.Outcome) -> String? {
        if let error = oracle.error as? HTTPParserError, error == .closedConnection,
            portico.finished, portico.error == nil, portico.messages.count == oracle.messages.count
        {
            // As for requests: bytes after `Connection: close` are ignored by Portico and an
            // error to llhttp; neither parses them.
            return "bytes after Connection: close"
        }
        return nil
    }
}
