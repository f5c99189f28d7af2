import PorticoCore
import XCTest

/// The dashboard's per-route rate, error ratio and percentiles, from two readings of the
/// Prometheus text the gateway already exposes.
final class RouteTrafficTests: XCTestCase {
    static func exposition(ok: Int, errors: Int, buckets: [(String, Int)]) -> String {
        var lines = [
            "# TYPE portico_requests_total counter",
            "portico_requests_total{route=\"api\",backend=\"svc\",code=\"200\"} \(ok)",
            "portico_requests_total{route=\"api\",backend=\"svc\",code=\"503\"} \(errors)",
            "portico_requests_total{route=\"we\\\"ird\",backend=\"svc\",code=\"404\"} 1",
            "# TYPE portico_request_duration_seconds histogram",
        ]
        for (le, count) in buckets {
            lines.append("portico_request_duration_seconds_bucket{route=\"api\",le=\"\(le)\"} \(count)")
        }
        lines.append("portico_request_duration_seconds_count{route=\"api\"} \(ok + errors)")
        return lines.joined(separator: "\n") + "\n"
    }

    func testReadsCountersAndBuckets() {
        let traffic = RouteTraffic(exposition: Array(Self.exposition(ok: 9, errors: 1, buckets: [
            ("0.001", 2), ("0.01", 8), ("0.1", 10), ("+Inf", 10),
        ]).utf8))
        XCTAssertEqual(traffic.routes["api"]?.requests, 10)
        XCTAssertEqual(traffic.routes["api"]?.errors, 1)
        XCTAssertEqual(traffic.routes["api"]?.buckets.map(\.le), [0.001, 0.01, 0.1], "+Inf is left out")
        XCTAssertEqual(traffic.routes["we\"ird"]?.requests, 1, "escaped label values are read")
    }

    func testRatesAreTheChangeBetweenReadings() throws {
        let before = RouteTraffic(exposition: Array(Self.exposition(ok: 100, errors: 0, buckets: [
            ("0.001", 100), ("0.01", 100), ("0.1", 100), ("+Inf", 100),
        ]).utf8))
        // 100 more requests in 2 s: 10 failed; 50 took under 1 ms, 40 under 10 ms, 10 under 100 ms.
        let after = RouteTraffic(exposition: Array(Self.exposition(ok: 190, errors: 10, buckets: [
            ("0.001", 150), ("0.01", 190), ("0.1", 200), ("+Inf", 200),
        ]).utf8))
        let rate = try XCTUnwrap(after.rates(since: before, seconds: 2)["api"])
        XCTAssertEqual(rate.requestsPerSecond, 50, accuracy: 1e-9)
        XCTAssertEqual(rate.errorRatio, 0.1, accuracy: 1e-9)
        // The 50th of 100 is the last of the first bucket; the 99th is 9/10 into the third.
        XCTAssertEqual(try XCTUnwrap(rate.p50Seconds), 0.001, accuracy: 1e-9)
        XCTAssertEqual(try XCTUnwrap(rate.p99Seconds), 0.01 + 0.09 * 0.9, accuracy: 1e-9)
    }

    func testAQuietRouteHasNoPercentiles() throws {
        let reading = RouteTraffic(exposition: Array(Self.exposition(ok: 5, errors: 0, buckets: [("0.1", 5)]).utf8))
        let rate = try XCTUnwrap(reading.rates(since: reading, seconds: 1)["api"])
        XCTAssertEqual(rate.requestsPerSecond, 0)
        XCTAssertEqual(rate.errorRatio, 0)
        XCTAssertNil(rate.p50Seconds)
        XCTAssertNil(rate.p99Seconds)
    }

    func testANewRouteCountsFromZero() throws {
        let after = RouteTraffic(exposition: Array(Self.exposition(ok: 4, errors: 0, buckets: [("0.001", 4)]).utf8))
        let rate = try XCTUnwrap(after.rates(since: RouteTraffic(), seconds: 1)["api"])
        XCTAssertEqual(rate.requestsPerSecond, 4)
    }
}
