import NIOEmbedded
import PorticoConfig
@testable import PorticoProxy
import XCTest

/// Which pool a request of a service gets, across reloads.
final class LoopContextPoolTests: XCTestCase {
    private let endpoint = HostPort(host: "127.0.0.1", port: 9001)

    private func snapshot(_ service: ServiceConfig, generation: Int) throws -> RuntimeSnapshot {
        try RuntimeSnapshot(config: GatewayConfig(
            sourceFile: "test.yaml",
            listeners: [ListenerConfig(name: "public", address: HostPort(host: "127.0.0.1", port: 0))],
            admin: nil, limits: LimitsConfig(), services: [service], routes: []), generation: generation)
    }

    func testAReloadKeepsThePoolUnlessTheServiceConnectionSettingsChange() throws {
        let loop = EmbeddedEventLoop()
        let service = ServiceConfig(name: "api", endpoints: [endpoint])
        let context = LoopContext(eventLoop: loop, loopIndex: 0, snapshot: try snapshot(service, generation: 1),
                                  metrics: GatewayMetrics(), accessLogWriter: nil)
        let first = context.pool(for: service).pool

        var retried = service
        retried.retryBudget.percent = 50
        context.install(try snapshot(retried, generation: 2))
        XCTAssertTrue(context.pool(for: retried).pool === first, "other settings keep the warm pool")

        var limited = retried
        limited.circuitBreaker = CircuitBreakerConfig(maxConnections: 2)
        context.install(try snapshot(limited, generation: 3))
        XCTAssertFalse(context.pool(for: limited).pool === first, "a new connection limit gets a new pool")

        var slower = limited
        slower.connectTimeout = .seconds(9)
        let before = context.pool(for: limited).pool
        context.install(try snapshot(slower, generation: 4))
        XCTAssertFalse(context.pool(for: slower).pool === before, "a new connect timeout gets a new pool")
    }
}

/// Which reloads keep a service's outlier and health state.
final class ServiceHealthReloadTests: XCTestCase {
    private func snapshot(_ service: ServiceConfig, generation: Int, previous: RuntimeSnapshot?) throws -> RuntimeSnapshot {
        try RuntimeSnapshot(config: GatewayConfig(
            sourceFile: "test.yaml",
            listeners: [ListenerConfig(name: "public", address: HostPort(host: "127.0.0.1", port: 0))],
            admin: nil, limits: LimitsConfig(), services: [service], routes: []), generation: generation, previous: previous)
    }

    func testStateSurvivesReloadsThatDoNotChangeWhatItWatches() throws {
        var service = ServiceConfig(name: "api", endpoints: [HostPort(host: "127.0.0.1", port: 9001),
                                                            HostPort(host: "127.0.0.1", port: 9002)])
        service.outlierDetection = OutlierDetectionConfig(consecutive5xx: 1, maxEjectionPercent: 50)
        let first = try snapshot(service, generation: 1, previous: nil)
        let health = try XCTUnwrap(first.serviceHealth["api"])
        health.recordResponse(endpoint: 1, status: 503)
        XCTAssertEqual(health.availability, [true, false], "ejected")

        service.retryBudget.percent = 50
        service.circuitBreaker = CircuitBreakerConfig(maxPendingRequests: 10)
        let second = try snapshot(service, generation: 2, previous: first)
        XCTAssertTrue(second.serviceHealth["api"] === health, "retries and breaker changes keep the state")
        XCTAssertEqual(second.serviceHealth["api"]?.availability, [true, false])

        service.outlierDetection?.consecutive5xx = 3
        let third = try snapshot(service, generation: 3, previous: second)
        XCTAssertFalse(third.serviceHealth["api"] === health, "new detection settings start afresh")
        XCTAssertNil(third.serviceHealth["api"]?.availability)
    }
}
