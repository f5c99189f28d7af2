import PorticoCore
import XCTest

/// The tap's pure parts, event by event: the filter, the per-loop outbox and the client's
/// delivery (see `LoopTap` and `TapConnection` for their shells).
final class TapStateTests: XCTestCase {
    // MARK: TapFilter

    func testFilterMatchesRouteAndStatusClasses() throws {
        let filter = TapFilter(route: "api", statuses: try TapFilter.statuses(parsing: "5xx,404"))
        XCTAssertTrue(filter.matches(route: "api", status: 503, local: false))
        XCTAssertTrue(filter.matches(route: "api", status: 404, local: true))
        XCTAssertFalse(filter.matches(route: "api", status: 200, local: false))
        XCTAssertFalse(filter.matches(route: "api", status: 403, local: false))
        XCTAssertFalse(filter.matches(route: "other", status: 503, local: false), "another route")
        XCTAssertTrue(TapFilter().matches(route: "any", status: 200, local: false), "no filter: every request")
    }

    func testLocalOnlyFilterSkipsProxiedAnswers() {
        let filter = TapFilter(localOnly: true)
        XCTAssertTrue(filter.matches(route: "api", status: 503, local: true))
        XCTAssertFalse(filter.matches(route: "api", status: 503, local: false))
    }

    func testStatusParsing() throws {
        XCTAssertEqual(try TapFilter.statuses(parsing: "5xx"), [500...599])
        XCTAssertEqual(try TapFilter.statuses(parsing: "4XX, 503"), [400...499, 503...503])
        for bad in ["", "6xx", "50", "5x", "abc", "5xx,", "1000", "099"] {
            XCTAssertThrowsError(try TapFilter.statuses(parsing: bad), bad) { error in
                XCTAssertTrue("\(error)".contains("status filter"), "\(error)")
            }
        }
    }

    // MARK: TapOutbox

    func testOutboxSchedulesOneHandOverPerBatch() {
        var outbox = TapOutbox(capacity: 3)
        XCTAssertEqual(outbox.offer(), .append(scheduleHandOver: true))
        XCTAssertEqual(outbox.offer(), .append(scheduleHandOver: false))
        XCTAssertEqual(outbox.pending, 2)
        let batch = outbox.handOver()
        XCTAssertEqual(batch.lines, 2)
        XCTAssertEqual(batch.dropped, 0)
        XCTAssertEqual(outbox.offer(), .append(scheduleHandOver: true), "the next line starts a new batch")
    }

    func testFullOutboxDropsAndCountsUntilHandedOver() {
        var outbox = TapOutbox(capacity: 2)
        _ = outbox.offer()
        _ = outbox.offer()
        XCTAssertEqual(outbox.offer(), .drop)
        XCTAssertEqual(outbox.offer(), .drop)
        XCTAssertEqual(outbox.dropped, 2)
        let batch = outbox.handOver()
        XCTAssertEqual(batch.lines, 2)
        XCTAssertEqual(batch.dropped, 2)
        XCTAssertEqual(outbox.dropped, 0)
        XCTAssertEqual(outbox.offer(), .append(scheduleHandOver: true))
    }

    // MARK: TapDelivery

    func testDeliveryWritesWhileWritableAndReportsDropsOnce() {
        var delivery = TapDelivery()
        XCTAssertEqual(delivery.batchArrived(lines: 5, droppedOnLoop: 0, writable: true), .write(droppedBefore: nil))
        XCTAssertEqual(delivery.batchArrived(lines: 4, droppedOnLoop: 0, writable: false), .drop, "the client is not reading")
        XCTAssertEqual(delivery.batchArrived(lines: 3, droppedOnLoop: 1, writable: false), .drop)
        XCTAssertEqual(delivery.unreported, 8)
        XCTAssertEqual(delivery.batchArrived(lines: 2, droppedOnLoop: 0, writable: true), .write(droppedBefore: 8),
                       "the next batch says what was lost")
        XCTAssertEqual(delivery.batchArrived(lines: 1, droppedOnLoop: 0, writable: true), .write(droppedBefore: nil),
                       "reported once")
        XCTAssertEqual(delivery.delivered, 8)
        XCTAssertEqual(delivery.dropped, 8)
    }

    func testDropsOnTheLoopAreReportedWithTheirBatch() {
        var delivery = TapDelivery()
        XCTAssertEqual(delivery.batchArrived(lines: 2000, droppedOnLoop: 35, writable: true), .write(droppedBefore: 35))
        XCTAssertEqual(delivery.dropped, 35)
        XCTAssertEqual(delivery.delivered, 2000)
    }
}
