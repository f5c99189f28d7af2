import PorticoCore
import XCTest

/// `traceparent` as W3C Trace Context level 1 defines it, and the trace-id ratio sampler.
final class TraceParentTests: XCTestCase {
    private func parse(_ text: String) -> TraceParent? { TraceParent.parse(Array(text.utf8)) }

    func testAValidHeaderIsRead() throws {
        let parent = try XCTUnwrap(parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"))
        XCTAssertEqual(parent.traceIDHigh, 0x4bf9_2f35_77b3_4da6)
        XCTAssertEqual(parent.traceIDLow, 0xa3ce_929d_0e0e_4736)
        XCTAssertEqual(parent.spanID, 0x00f0_67aa_0ba9_02b7)
        XCTAssertTrue(parent.sampled)
        XCTAssertEqual(parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00")?.sampled, false)
        // Only the sampled bit counts among the flags.
        XCTAssertEqual(parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03")?.sampled, true)
    }

    func testWhatTheSpecificationSaysToIgnoreIsIgnored() {
        for text in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",           // no flags
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-",       // version 00 ends at its flags
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",        // upper case
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",        // zero trace id
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",        // zero span id
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",        // the forbidden version
            "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",         // short trace id
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b-701",
            "0g-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ] {
            XCTAssertNil(parse(text), text)
        }
        // A later version may carry more after its flags; its first fields are read.
        XCTAssertEqual(parse("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra")?.spanID, 0x00f0_67aa_0ba9_02b7)
    }

    func testWrittenAsVersion00() {
        let parent = TraceParent(traceIDHigh: 0x4bf9_2f35_77b3_4da6, traceIDLow: 0xa3ce_929d_0e0e_4736, spanID: 0xb7, sampled: false)
        let text = parent.withEncodedBytes { String(decoding: $0, as: UTF8.self) }
        XCTAssertEqual(text, "00-4bf92f3577b34da6a3ce929d0e0e4736-00000000000000b7-00")
        XCTAssertEqual(text.utf8.count, TraceParent.encodedLength)
        XCTAssertEqual(parse(text), parent, "what is written reads back")
        XCTAssertEqual(parent.traceIDHex, "4bf92f3577b34da6a3ce929d0e0e4736")
    }

    func testTheRatioSamplerKeepsItsShareByTraceID() {
        let sampler = TraceSampler(ratio: 0.25, parentBased: true)
        var random = SystemRandomNumberGenerator()
        let draws = 40_000
        let kept = (0..<draws).filter { _ in sampler.sampled(parent: nil, traceIDLow: random.next()) }.count
        // 10,000 expected; the standard deviation is 87.
        XCTAssertTrue((9_500...10_500).contains(kept), "\(kept)")
        // The decision is the trace id's, not a fresh draw: the same id, the same answer.
        XCTAssertTrue(sampler.sampled(parent: nil, traceIDLow: 0))
        XCTAssertFalse(sampler.sampled(parent: nil, traceIDLow: .max))
        XCTAssertTrue(TraceSampler(ratio: 1, parentBased: true).sampled(parent: nil, traceIDLow: .max))
        XCTAssertFalse(TraceSampler(ratio: 0, parentBased: true).sampled(parent: nil, traceIDLow: 0))
    }

    func testAParentsDecisionIsFollowedWhenParentBased() {
        let sampledParent = TraceParent(traceIDHigh: 1, traceIDLow: .max, spanID: 1, sampled: true)
        let unsampledParent = TraceParent(traceIDHigh: 1, traceIDLow: 0, spanID: 1, sampled: false)
        let parentBased = TraceSampler(ratio: 0.5, parentBased: true)
        XCTAssertTrue(parentBased.sampled(parent: sampledParent, traceIDLow: .max))
        XCTAssertFalse(parentBased.sampled(parent: unsampledParent, traceIDLow: 0))
        let ratioOnly = TraceSampler(ratio: 0.5, parentBased: false)
        XCTAssertFalse(ratioOnly.sampled(parent: sampledParent, traceIDLow: .max))
        XCTAssertTrue(ratioOnly.sampled(parent: unsampledParent, traceIDLow: 0))
    }
}
