import PorticoCore
import XCTest

final class HealthCheckStateTests: XCTestCase {
    func testEndpointsStartHealthy() {
        let health = HealthCheckState(endpointCount: 3, healthyThreshold: 2, unhealthyThreshold: 3)
        XCTAssertTrue(health.isHealthy(0))
        XCTAssertTrue(health.isHealthy(2))
        XCTAssertEqual(health.healthyCount, 3)
    }

    func testUnhealthyAfterThresholdFailuresInARow() {
        var health = HealthCheckState(endpointCount: 2, healthyThreshold: 2, unhealthyThreshold: 3)
        XCTAssertNil(health.checkFailed(endpoint: 1))
        XCTAssertNil(health.checkFailed(endpoint: 1))
        XCTAssertTrue(health.isHealthy(1))
        XCTAssertEqual(health.checkFailed(endpoint: 1), .becameUnhealthy(1))
        XCTAssertFalse(health.isHealthy(1))
        XCTAssertTrue(health.isHealthy(0))
        XCTAssertEqual(health.healthyCount, 1)
        // Already unhealthy: no second transition.
        XCTAssertNil(health.checkFailed(endpoint: 1))
        XCTAssertEqual(health.healthyCount, 1)
    }

    func testASuccessBreaksARunOfFailures() {
        var health = HealthCheckState(endpointCount: 1, healthyThreshold: 1, unhealthyThreshold: 3)
        XCTAssertNil(health.checkFailed(endpoint: 0))
        XCTAssertNil(health.checkFailed(endpoint: 0))
        XCTAssertNil(health.checkSucceeded(endpoint: 0))
        XCTAssertNil(health.checkFailed(endpoint: 0))
        XCTAssertNil(health.checkFailed(endpoint: 0))
        XCTAssertTrue(health.isHealthy(0))
        XCTAssertEqual(health.checkFailed(endpoint: 0), .becameUnhealthy(0))
    }

    func testHealthyAgainAfterThresholdSuccessesInARow() {
        var health = HealthCheckState(endpointCount: 2, healthyThreshold: 3, unhealthyThreshold: 1)
        XCTAssertEqual(health.checkFailed(endpoint: 0), .becameUnhealthy(0))
        XCTAssertNil(health.checkSucceeded(endpoint: 0))
        XCTAssertNil(health.checkSucceeded(endpoint: 0))
        XCTAssertFalse(health.isHealthy(0))
        XCTAssertEqual(health.checkSucceeded(endpoint: 0), .becameHealthy(0))
        XCTAssertTrue(health.isHealthy(0))
        XCTAssertEqual(health.healthyCount, 2)
        // Already healthy: no second transition.
        XCTAssertNil(health.checkSucceeded(endpoint: 0))
    }

    func testAFailureBreaksARunOfSuccesses() {
        var health = HealthCheckState(endpointCount: 1, healthyThreshold: 3, unhealthyThreshold: 1)
        XCTAssertEqual(health.checkFailed(endpoint: 0), .becameUnhealthy(0))
        XCTAssertNil(health.checkSucceeded(endpoint: 0))
        XCTAssertNil(health.checkSucceeded(endpoint: 0))
        XCTAssertNil(health.checkFailed(endpoint: 0))
        XCTAssertNil(health.checkSucceeded(endpoint: 0))
        XCTAssertNil(health.checkSucceeded(endpoint: 0))
        XCTAssertFalse(health.isHealthy(0))
        XCTAssertEqual(health.checkSucceeded(endpoint: 0), .becameHealthy(0))
    }

    func testAFreshRecoveryNeedsAFullRunOfFailuresAgain() {
        var health = HealthCheckState(endpointCount: 1, healthyThreshold: 2, unhealthyThreshold: 2)
        XCTAssertNil(health.checkFailed(endpoint: 0))
        XCTAssertEqual(health.checkFailed(endpoint: 0), .becameUnhealthy(0))
        XCTAssertNil(health.checkSucceeded(endpoint: 0))
        XCTAssertEqual(health.checkSucceeded(endpoint: 0), .becameHealthy(0))
        XCTAssertNil(health.checkFailed(endpoint: 0))
        XCTAssertEqual(health.checkFailed(endpoint: 0), .becameUnhealthy(0))
    }

    func testAnUnexpectedStatusIsUnhealthyAtOnce() {
        var health = HealthCheckState(endpointCount: 2, healthyThreshold: 2, unhealthyThreshold: 5)
        XCTAssertEqual(health.checkFailed(endpoint: 1, kind: .unexpectedStatus), .becameUnhealthy(1))
        XCTAssertFalse(health.isHealthy(1))
        XCTAssertNil(health.checkFailed(endpoint: 1, kind: .unexpectedStatus))
        // Recovery still takes healthyThreshold successes.
        XCTAssertNil(health.checkSucceeded(endpoint: 1))
        XCTAssertEqual(health.checkSucceeded(endpoint: 1), .becameHealthy(1))

        // Network failures before it do not matter; it does not wait for the threshold.
        XCTAssertNil(health.checkFailed(endpoint: 0, kind: .network))
        XCTAssertEqual(health.checkFailed(endpoint: 0, kind: .unexpectedStatus), .becameUnhealthy(0))
    }

    func testThresholdsBelowOneAreOne() {
        var health = HealthCheckState(endpointCount: 1, healthyThreshold: 0, unhealthyThreshold: -3)
        XCTAssertEqual(health.healthyThreshold, 1)
        XCTAssertEqual(health.unhealthyThreshold, 1)
        XCTAssertEqual(health.checkFailed(endpoint: 0), .becameUnhealthy(0))
        XCTAssertEqual(health.checkSucceeded(endpoint: 0), .becameHealthy(0))
    }
}
