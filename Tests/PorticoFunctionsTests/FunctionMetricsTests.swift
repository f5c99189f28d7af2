@testable import PorticoFunctions
import Prometheus
import XCTest

final class FunctionMetricsTests: XCTestCase {
    private func scrape(_ registry: PrometheusCollectorRegistry) -> String {
        registry.emitToString()
    }

    /// An idle function shows nothing (a thousand of them were 20,000 lines of zeros); once it
    /// has had a worker, its series stay, zeros included, so a scale to zero shows as 0.
    func testAFunctionHasNoSeriesUntilItHasSomethingToShow() {
        let registry = PrometheusCollectorRegistry()
        let metrics = FunctionMetrics(function: "idle", registry: registry)
        metrics.setWorkers(starting: 0, ready: 0, draining: 0, queueLength: 0)
        XCTAssertFalse(scrape(registry).contains("idle"), scrape(registry))

        metrics.setWorkers(starting: 1, ready: 0, draining: 0, queueLength: 1)
        XCTAssertTrue(scrape(registry).contains(#"portico_function_workers{function="idle",state="starting"} 1"#), scrape(registry))
        XCTAssertTrue(scrape(registry).contains(#"portico_function_queue_length{function="idle"} 1"#), scrape(registry))

        metrics.setWorkers(starting: 0, ready: 0, draining: 0, queueLength: 0)
        XCTAssertTrue(scrape(registry).contains(#"portico_function_workers{function="idle",state="starting"} 0"#), scrape(registry))
        XCTAssertTrue(scrape(registry).contains(#"portico_function_cold_starts_total{function="idle"} 0"#), scrape(registry))
    }
}
