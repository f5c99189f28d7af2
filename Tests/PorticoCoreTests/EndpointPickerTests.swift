import PorticoCore
import XCTest

/// A seeded generator (splitmix64), so every run of a test sees the same sequence.
struct ScriptedGenerator: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        // splitmix64: deterministic but well spread.
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

final class EndpointPickerTests: XCTestCase {
    func testRoundRobinCyclesFromItsOffset() {
        var picker = EndpointPicker(strategy: .roundRobin, endpointCount: 3, startingAt: 1)
        var rng = ScriptedGenerator(state: 1)
        let picks = (0..<6).map { _ in picker.pick(using: &rng) }
        XCTAssertEqual(picks, [1, 2, 0, 1, 2, 0])
    }

    func testLeastRequestAvoidsTheBusyEndpoint() {
        var picker = EndpointPicker(strategy: .leastRequest, endpointCount: 2)
        var rng = ScriptedGenerator(state: 7)
        for _ in 0..<5 { picker.requestStarted(at: 0) }
        // With two endpoints both are always drawn, so the idle one must win every time.
        for _ in 0..<50 { XCTAssertEqual(picker.pick(using: &rng), 1) }
        for _ in 0..<5 { picker.requestFinished(at: 0) }
        picker.requestStarted(at: 1)
        for _ in 0..<50 { XCTAssertEqual(picker.pick(using: &rng), 0) }
    }

    func testRandomSpreadsOverAllEndpoints() {
        var picker = EndpointPicker(strategy: .random, endpointCount: 4)
        var rng = ScriptedGenerator(state: 42)
        var counts = [0, 0, 0, 0]
        for _ in 0..<4000 { counts[picker.pick(using: &rng)] += 1 }
        for count in counts { XCTAssertEqual(Double(count), 1000, accuracy: 150) }
    }

    func testSingleEndpointAlwaysWins() {
        var picker = EndpointPicker(strategy: .leastRequest, endpointCount: 1)
        var rng = ScriptedGenerator(state: 3)
        XCTAssertEqual(picker.pick(using: &rng), 0)
    }
}
