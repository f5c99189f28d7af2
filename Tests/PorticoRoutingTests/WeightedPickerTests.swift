import PorticoRouting
import XCTest

final class WeightedPickerTests: XCTestCase {
    private func distribution(_ weights: [Int], keys: Int = 10_000) -> [Int] {
        let picker = WeightedPicker(weights: weights)
        var counts = Array(repeating: 0, count: weights.count)
        for key in 1...keys {
            counts[picker.pick(hash: StableHash.hash("req-\(key)"))] += 1
        }
        return counts
    }

    func testNinetyTenSplitOverSequentialKeys() {
        let counts = distribution([90, 10])
        XCTAssertEqual(counts[0], 9000, accuracy: 300, "\(counts)")
        XCTAssertEqual(counts[1], 1000, accuracy: 300, "\(counts)")
    }

    func testThreeWaySplit() {
        let counts = distribution([50, 30, 20])
        XCTAssertEqual(counts[0], 5000, accuracy: 300, "\(counts)")
        XCTAssertEqual(counts[1], 3000, accuracy: 300, "\(counts)")
        XCTAssertEqual(counts[2], 2000, accuracy: 300, "\(counts)")
    }

    func testZeroWeightIsNeverPicked() {
        XCTAssertEqual(distribution([0, 1, 0]), [0, 10_000, 0])
    }

    func testSameKeyAlwaysSameBackend() {
        let picker = WeightedPicker(weights: [90, 10])
        for key in ["user-1", "user-2", "session-abc", ""] {
            let first = picker.pick(hash: StableHash.hash(key))
            for _ in 0..<10 {
                XCTAssertEqual(WeightedPicker(weights: [90, 10]).pick(hash: StableHash.hash(key)), first, key)
            }
        }
    }

    func testExtremeHashesStayInRange() {
        let picker = WeightedPicker(weights: [1, 1])
        XCTAssertEqual(picker.pick(hash: 0), 0)
        XCTAssertEqual(picker.pick(hash: .max), 1)
        XCTAssertEqual(WeightedPicker(weights: [0, 0]).pick(hash: 12345), 0)
    }

    /// Pinned values: the hash must not change between releases, or every sticky split
    /// reshuffles on upgrade.
    func testStableHashIsPinned() {
        XCTAssertEqual(StableHash.hash("req-1"), StableHash.hash(Array("req-1".utf8)))
        XCTAssertNotEqual(StableHash.hash("req-1"), StableHash.hash("req-2"))
        // Computed independently (FNV-1a 64, then splitmix64's finalizer).
        XCTAssertEqual(StableHash.hash(""), 0xF52A_15E9_A9B5_E89B as UInt64)
        XCTAssertEqual(StableHash.hash("req-1"), 0x0A28_81C3_268A_7392 as UInt64)
    }
}
