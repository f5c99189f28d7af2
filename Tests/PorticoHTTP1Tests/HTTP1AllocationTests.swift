import CAllocationCounter
import NIOCore
import PorticoHTTP1
import XCTest

/// The parser keeps fields as offsets, so a head with many fields costs no more allocations
/// than one with few (beyond the offset array doubling its capacity now and then).
final class HTTP1AllocationTests: XCTestCase {
    private func allocationsPerHead(fields: Int) -> Double {
        let head = "GET /path?q=1 HTTP/1.1\r\nHost: example.com\r\n"
            + (0..<fields).map { "X-Field-\($0): some value \($0)\r\n" }.joined() + "\r\n"
        let input = ByteBuffer(string: head)
        func parse() {
            var parser = HTTP1RequestParser()
            parser.feed(input)
            while let event = parser.next() {
                if case .head(let head) = event {
                    precondition(head.fields.count == fields + 1 && head.fields.contains("host"))
                }
            }
        }
        parse()
        let rounds = 200
        portico_count_allocations_on_this_thread(1)
        let before = portico_counted_allocations()
        for _ in 0..<rounds { parse() }
        let after = portico_counted_allocations()
        portico_count_allocations_on_this_thread(0)
        return Double(after - before) / Double(rounds)
    }

    func testFieldsDoNotCostAllocationsEach() {
        let few = self.allocationsPerHead(fields: 4)
        let many = self.allocationsPerHead(fields: 250)
        print("allocations per parsed head: \(few) with 5 fields, \(many) with 251")
        XCTAssertGreaterThan(few, 0, "the counter counted nothing: is it still interposing malloc?")
        // 16 → 32 → 64 → 128 → 256 entries: four regrowths of the offset array.
        XCTAssertLessThanOrEqual(many - few, 5, "parsing allocates per field")
        XCTAssertLessThanOrEqual(few, 4, "parsing a small head allocates more than it used to")
    }
}
