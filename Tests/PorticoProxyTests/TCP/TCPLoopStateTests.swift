import PorticoConfig
@testable import PorticoProxy
import XCTest

/// Which endpoint a tcp connection's next connect goes to.
final class TCPLoopStateTests: XCTestCase {
    private let service = ServiceConfig(name: "pg", endpoints: (1...3).map { HostPort(host: "127.0.0.1", port: 5430 + $0) })
    private var random = FastRandom(seed: 7)

    private func pick(_ entry: TCPLoopState.ServiceEntry, limit: Int? = nil, available: [Bool]? = nil,
                      tried: [Bool] = [false, false, false]) -> Int? {
        TCPLoopState.pick(in: entry, limit: limit, available: available, tried: tried, random: &random)
    }

    func testRoundRobinSkipsTheEndpointsAlreadyTried() {
        let entry = TCPLoopState(loopIndex: 0).entry(for: service)
        XCTAssertEqual([pick(entry), pick(entry), pick(entry), pick(entry)], [0, 1, 2, 0])
        XCTAssertEqual(pick(entry, tried: [false, true, false]), 2, "1 was refused: the next one")
        XCTAssertNil(pick(entry, tried: [true, true, true]))
    }

    func testTheConnectionLimitPassesAFullEndpointOver() {
        let entry = TCPLoopState(loopIndex: 0).entry(for: service)
        entry.opened(0)
        entry.opened(0)
        entry.opened(1)
        for _ in 0..<6 { XCTAssertEqual(pick(entry, limit: 1), 2) }
        entry.opened(2)
        XCTAssertNil(pick(entry, limit: 1), "every endpoint is full")
        entry.closed(1)
        XCTAssertEqual(pick(entry, limit: 1), 1)
    }

    func testUnavailableEndpointsAreLeftOutUnlessNothingElseIsLeft() {
        let entry = TCPLoopState(loopIndex: 0).entry(for: service)
        for _ in 0..<6 { XCTAssertEqual(pick(entry, available: [false, true, false]), 1) }
        XCTAssertNotNil(pick(entry, available: [false, true, false], tried: [false, true, false]),
                        "an ejected endpoint beats refusing the connection")
    }

    func testAReloadThatChangesTheEndpointsStartsANewEntry() {
        let loop = TCPLoopState(loopIndex: 0)
        let entry = loop.entry(for: service)
        XCTAssertTrue(loop.entry(for: service) === entry)
        var changed = service
        changed.endpoints.removeLast()
        XCTAssertFalse(loop.entry(for: changed) === entry)
        XCTAssertEqual(loop.entry(for: changed).endpoints.count, 2)
    }
}
