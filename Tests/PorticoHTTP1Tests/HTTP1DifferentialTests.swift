import NIOHTTP1
import PorticoHTTP1
import XCTest

/// Portico's request parser against llhttp (NIO's `HTTPRequestDecoder`, strict) on generated
/// and mutated requests, each fed whole and split at every byte.
///
/// The rule: wherever Portico hands out a head, body bytes or the end of a message, llhttp
/// hands out the same (method, target, fields, body bytes, trailers). Portico may reject
/// what llhttp accepts. It may not accept what llhttp rejects, except in the cases named in
/// `exception(...)`, each with its reason.
final class HTTP1DifferentialTests: XCTestCase {
    private struct Tally {
        var inputs = 0
        /// Inputs fed at every split; longer ones get 40 seeded cuts besides whole and byte by byte.
        var splitAtEveryByte = 0
        var feedings = 0
        var bothAccepted = 0
        var porticoStricter = 0
        var bothRejected = 0
        var porticoUndecided = 0
        var exceptions: [String: Int] = [:]
    }

    func testGeneratedRequestsParseAlikeInBoth() {
        var generator = RequestGenerator(seed: 0x5eed_0001)
        var tally = Tally()
        for _ in 0..<60 {
            let input = generator.pipeline()
            let failures = self.testRun?.failureCount ?? 0
            let outcome = self.compareEverySplit(input, &tally)
            // Generated requests are valid, so Portico must accept all of them.
            XCTAssertNil(outcome.error, "Portico rejected a valid request: \(String(decoding: input, as: UTF8.self).debugDescription)")
            if (self.testRun?.failureCount ?? 0) > failures + 2 { break }
        }
        print("differential, valid: \(tally)")
        XCTAssertEqual(tally.porticoStricter, 0)
    }

    func testMutatedRequestsNeverMakePorticoAcceptWhatLLHTTPRejects() {
        var generator = RequestGenerator(seed: 0x5eed_0002)
        var tally = Tally()
        for _ in 0..<200 {
            let input = generator.mutate(generator.pipeline())
            self.compareEverySplit(input, &tally)
            if (self.testRun?.failureCount ?? 0) > 3 { break }
        }
        print("differential, mutated: \(tally)")
        XCTAssertGreaterThan(tally.bothAccepted, 50, "the mutations should leave some inputs valid")
        XCTAssertGreaterThan(tally.bothRejected, 100, "the mutations should break most inputs")
    }

    func testShortRequestsAgreeAtEverySplit() {
        var generator = RequestGenerator(seed: 0x5eed_0003)
        generator.compact = true
        var tally = Tally()
        for round in 0..<90 {
            let request = generator.request()
            // Every other input is mutated; all are short enough to be cut at every byte.
            let input = round % 2 == 0 ? request : generator.mutate(request)
            self.compareEverySplit(input, &tally)
            if (self.testRun?.failureCount ?? 0) > 3 { break }
        }
        print("differential, short: \(tally)")
        XCTAssertEqual(tally.splitAtEveryByte, tally.inputs)
    }

    /// Compares both parsers on `input` for every feeding; returns Portico's whole-input outcome.
    @discardableResult
    private func compareEverySplit(_ input: [UInt8], _ tally: inout Tally, file: StaticString = #filePath, line: UInt = #line)
        -> ParseOutcome
    {
        tally.inputs += 1
        let whole = Feeding.parseRequests([input])
        // Splitting at every byte costs one parse per byte; long inputs get a sample of cuts.
        var feedings = Feeding.everySplit(input)
        if feedings.count > 200 {
            var random = SeededRandom(seed: UInt64(input.count))
            feedings = [feedings[0], feedings[feedings.count - 1]] + (0..<40).map { _ in random.pick(feedings) }
        } else {
            tally.splitAtEveryByte += 1
        }
        for feeding in feedings {
            tally.feedings += 1
            let portico = Feeding.parseRequests(feeding)
            if portico != whole {
                XCTFail("Portico depends on the split \(feeding.map(\.count)): \(portico) vs \(whole)", file: file, line: line)
                return whole
            }
            var oracle = LLHTTPOracle.parse(feeding)
            var violation = self.violation(portico, oracle, &tally)
            if violation != nil, let spaced = Differential.spacesForTabsInFramingFields(input) {
                // llhttp refuses an HTAB between a `Content-Length` or `chunked` and the CRLF
                // (it takes SP there). RFC 9110 §5.6.3 makes both whitespace, and Portico takes
                // both. The same input with SP in those places must then agree in full.
                oracle = LLHTTPOracle.parse(Differential.cut(spaced, like: feeding))
                violation = self.violation(portico, oracle, &tally)
                if violation == nil { tally.exceptions["HTAB after a framing value", default: 0] += 1 }
            }
            if let violation {
                XCTFail(
                    "\(violation)\ninput: \(String(decoding: input, as: UTF8.self).debugDescription)\nsplit: \(feeding.map(\.count))\nportico: \(portico)\nllhttp: \(oracle.messages) \(oracle.error.map { "\($0)" } ?? "no error")",
                    file: file,
                    line: line
                )
                return whole
            }
        }
        return whole
    }

    /// Why Portico's outcome is not allowed next to llhttp's, or nil.
    private func violation(_ portico: ParseOutcome, _ oracle: LLHTTPOracle.Outcome, _ tally: inout Tally) -> String? {
        if let disagreement = Differential.disagreement(portico.messages, oracle.messages) {
            if disagreement.index >= oracle.messages.count, let reason = self.exception(portico, oracle, at: disagreement.index) {
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
            if let reason = self.exception(portico, oracle, at: oracle.messages.count) {
                tally.exceptions[reason, default: 0] += 1
            } else if portico.idle && !portico.awaitingUpgrade {
                // Portico took every byte as complete messages; llhttp refused some of them.
                return "llhttp rejected (\(error)) what Portico accepted"
            } else {
                // Portico is still inside a message: it has not accepted the bytes llhttp
                // refused, and would judge them when the rest arrives.
                tally.porticoUndecided += 1
            }
        }
        return nil
    }

    /// Where Portico may go further than llhttp, and why.
    private func exception(_ portico: ParseOutcome, _ oracle: LLHTTPOracle.Outcome, at index: Int) -> String? {
        if let error = oracle.error as? HTTPParserError, error == .closedConnection,
            portico.finished, portico.error == nil, portico.messages.count == oracle.messages.count
        {
            // llhttp fails on bytes after a `Connection: close` request; Portico ignores
            // them without an error, so the request it did parse still gets its answer.
            // Neither parses the bytes.
            return "bytes after Connection: close"
        }
        if let error = oracle.error as? HTTPParserError, error == .invalidMethod || error == .invalidConstant,
            index < portico.messages.count,
            let method = portico.messages[index].startLine.split(separator: " ").first,
            !LLHTTPOracle.knownMethods.contains(String(method))
        {
            // llhttp knows a fixed list of methods; RFC 9110 §9.1 makes any token a method,
            // and a gateway forwards extension methods. What follows the method was still
            // checked by Portico's own rules.
            return "extension method"
        }
        return nil
    }
}
