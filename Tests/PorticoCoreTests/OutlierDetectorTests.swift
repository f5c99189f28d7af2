import PorticoCore
import XCTest

final class OutlierDetectorTests: XCTestCase {
    private let second: Int64 = 1_000_000_000

    private func detector(
        endpoints: Int,
        consecutive5xx: Int? = 1,
        gateway: Int? = nil,
        percent: Int = 100,
        base: Int64 = 30,
        max: Int64 = 300,
        alwaysEjectOne: Bool = true
    ) -> OutlierDetector {
        OutlierDetector(
            settings: .init(
                consecutive5xx: consecutive5xx, consecutiveGatewayErrors: gateway, interval: 10 * second,
                baseEjectionTime: base * second, maxEjectionPercent: percent, maxEjectionTime: max * second,
                alwaysEjectOne: alwaysEjectOne),
            endpointCount: endpoints)
    }

    /// Sends `statuses` from `endpoint` at `now` and returns every action, so a test can assert
    /// the whole sequence.
    private func answer(
        _ detector: inout OutlierDetector, _ endpoint: Int, _ statuses: [Int], at now: Int64
    ) -> [OutlierDetector.Action] {
        statuses.map { detector.responseReceived(endpoint: endpoint, status: $0, now: now) }
    }

    // MARK: Counting errors

    func testDefaultsAreIstiosAndEjectAfterFiveServerErrors() {
        let settings = OutlierDetector.Settings()
        XCTAssertEqual(settings.consecutive5xx, 5)
        XCTAssertNil(settings.consecutiveGatewayErrors)
        XCTAssertEqual(settings.interval, 10 * second)
        XCTAssertEqual(settings.baseEjectionTime, 30 * second)
        XCTAssertEqual(settings.maxEjectionPercent, 10)
        XCTAssertEqual(settings.maxEjectionTime, 300 * second)

        var outliers = OutlierDetector(settings: settings, endpointCount: 3)
        XCTAssertEqual(answer(&outliers, 0, [500, 500, 500, 500], at: 7 * second), [.none, .none, .none, .none])
        XCTAssertFalse(outliers.isEjected(0))
        XCTAssertEqual(outliers.responseReceived(endpoint: 0, status: 500, now: 7 * second),
                       .eject(endpoint: 0, until: 37 * second))
    }

    func testEjectsAfterConsecutiveServerErrors() {
        var outliers = detector(endpoints: 4, consecutive5xx: 3, percent: 50)
        XCTAssertEqual(outliers.responseReceived(endpoint: 1, status: 500, now: 0), .none)
        XCTAssertEqual(outliers.responseReceived(endpoint: 1, status: 503, now: second), .none)
        XCTAssertEqual(outliers.responseReceived(endpoint: 1, status: 599, now: 2 * second),
                       .eject(endpoint: 1, until: 32 * second))

        XCTAssertTrue(outliers.isEjected(1))
        XCTAssertFalse(outliers.isEjected(0))
        XCTAssertEqual(outliers.ejectedUntil(1), 32 * second)
        XCTAssertNil(outliers.ejectedUntil(0))
        XCTAssertEqual(outliers.ejectedCount, 1)
        XCTAssertFalse(outliers.isAvailable(1))
        XCTAssertTrue(outliers.isAvailable(0))
        XCTAssertFalse(outliers.allEjected)
        XCTAssertEqual(outliers.ejectionMultiplier(1), 1)
    }

    func testAnyAnswerBelow500ResetsTheCount() {
        for status in [200, 204, 302, 404, 429, 499] {
            var outliers = detector(endpoints: 2, consecutive5xx: 3)
            XCTAssertEqual(answer(&outliers, 0, [500, 500, status, 500, 500], at: 0),
                           [.none, .none, .none, .none, .none], "after \(status)")
            XCTAssertEqual(outliers.responseReceived(endpoint: 0, status: 500, now: 0),
                           .eject(endpoint: 0, until: 30 * second), "after \(status)")
        }
    }

    func testEachEndpointHasItsOwnCount() {
        var outliers = detector(endpoints: 2, consecutive5xx: 3)
        XCTAssertEqual(answer(&outliers, 0, [500, 500], at: 0), [.none, .none])
        XCTAssertEqual(answer(&outliers, 1, [500, 500, 200], at: 0), [.none, .none, .none])
        XCTAssertEqual(outliers.responseReceived(endpoint: 0, status: 502, now: 0), .eject(endpoint: 0, until: 30 * second))
        XCTAssertEqual(outliers.responseReceived(endpoint: 1, status: 500, now: 0), .none)
        XCTAssertFalse(outliers.isEjected(1))
    }

    func testGatewayErrorsAreCountedOnTheirOwnAndA500BreaksTheirRun() {
        var outliers = detector(endpoints: 2, consecutive5xx: nil, gateway: 3)
        // With consecutive 5xx off, 500s never eject.
        XCTAssertEqual(answer(&outliers, 0, Array(repeating: 500, count: 10), at: 0), Array(repeating: .none, count: 10))
        XCTAssertEqual(answer(&outliers, 0, [502, 504, 500, 503, 502], at: 0), [.none, .none, .none, .none, .none])
        XCTAssertEqual(outliers.responseReceived(endpoint: 0, status: 504, now: second), .eject(endpoint: 0, until: 31 * second))
    }

    func testTheGatewayThresholdCanTripBeforeTheServerErrorOne() {
        var outliers = detector(endpoints: 2, consecutive5xx: 5, gateway: 2)
        XCTAssertEqual(answer(&outliers, 0, [500, 500, 502], at: 0), [.none, .none, .none])
        XCTAssertEqual(outliers.responseReceived(endpoint: 0, status: 503, now: 0), .eject(endpoint: 0, until: 30 * second))
    }

    func testGatewayErrorsAlsoCountAsServerErrors() {
        var outliers = detector(endpoints: 2, consecutive5xx: 3, gateway: 5)
        XCTAssertEqual(answer(&outliers, 0, [502, 503], at: 0), [.none, .none])
        XCTAssertEqual(outliers.responseReceived(endpoint: 0, status: 500, now: 0), .eject(endpoint: 0, until: 30 * second))
    }

    func testAGatewayFailureCountsAsAServerErrorAndAsAGatewayError() {
        var serverErrors = detector(endpoints: 2, consecutive5xx: 3, gateway: nil)
        XCTAssertEqual(serverErrors.gatewayFailure(endpoint: 1, now: 0), .none)
        XCTAssertEqual(serverErrors.gatewayFailure(endpoint: 1, now: 0), .none)
        XCTAssertEqual(serverErrors.gatewayFailure(endpoint: 1, now: 0), .eject(endpoint: 1, until: 30 * second))

        var gatewayErrors = detector(endpoints: 2, consecutive5xx: nil, gateway: 3)
        XCTAssertEqual(gatewayErrors.responseReceived(endpoint: 1, status: 502, now: 0), .none)
        XCTAssertEqual(gatewayErrors.gatewayFailure(endpoint: 1, now: 0), .none)
        XCTAssertEqual(gatewayErrors.responseReceived(endpoint: 1, status: 504, now: 0), .eject(endpoint: 1, until: 30 * second))

        // A success between failures resets the run, as for answers.
        var reset = detector(endpoints: 2, consecutive5xx: 2)
        XCTAssertEqual(reset.gatewayFailure(endpoint: 0, now: 0), .none)
        XCTAssertEqual(reset.responseReceived(endpoint: 0, status: 200, now: 0), .none)
        XCTAssertEqual(reset.gatewayFailure(endpoint: 0, now: 0), .none)
        XCTAssertEqual(reset.gatewayFailure(endpoint: 0, now: 0), .eject(endpoint: 0, until: 30 * second))
    }

    func testThresholdsThatAreOffNeverEject() {
        for threshold in [nil, 0, -1] as [Int?] {
            var outliers = detector(endpoints: 2, consecutive5xx: threshold, gateway: threshold)
            for _ in 0..<100 {
                XCTAssertEqual(outliers.responseReceived(endpoint: 0, status: 503, now: 0), .none)
                XCTAssertEqual(outliers.gatewayFailure(endpoint: 0, now: 0), .none)
            }
            XCTAssertEqual(outliers.ejectedCount, 0)
        }
    }

    // MARK: maxEjectionPercent

    func testMaxEjectionPercentCapsEjectionsAndARefusedEndpointNeedsAFreshRun() {
        var outliers = detector(endpoints: 10, consecutive5xx: 2, percent: 20)
        XCTAssertEqual(answer(&outliers, 0, [500, 500], at: 0), [.none, .eject(endpoint: 0, until: 30 * second)])
        XCTAssertEqual(answer(&outliers, 1, [500, 500], at: 0), [.none, .eject(endpoint: 1, until: 30 * second)])
        // 3 of 10 would be 30%.
        XCTAssertEqual(answer(&outliers, 2, [500, 500], at: 0), [.none, .none])
        XCTAssertFalse(outliers.isEjected(2))
        XCTAssertEqual(outliers.ejectedCount, 2)
        XCTAssertEqual(outliers.ejectionOverflowCount, 1)
        // The refusal restarted the count: one more error is not another attempt, two are.
        XCTAssertEqual(outliers.responseReceived(endpoint: 2, status: 500, now: 0), .none)
        XCTAssertEqual(outliers.ejectionOverflowCount, 1)
        XCTAssertEqual(outliers.responseReceived(endpoint: 2, status: 500, now: 0), .none)
        XCTAssertEqual(outliers.ejectionOverflowCount, 2)

        XCTAssertEqual(outliers.tick(now: 30 * second), [.uneject(endpoint: 0), .uneject(endpoint: 1)])
        XCTAssertEqual(answer(&outliers, 2, [500, 500], at: 31 * second), [.none, .eject(endpoint: 2, until: 61 * second)])
    }

    func testOneEndpointIsEjectedEvenWhereThePercentAllowsNone() {
        // 10% of 4 endpoints is less than one.
        var outliers = detector(endpoints: 4, percent: 10)
        XCTAssertEqual(outliers.responseReceived(endpoint: 3, status: 500, now: 0), .eject(endpoint: 3, until: 30 * second))
        XCTAssertEqual(outliers.responseReceived(endpoint: 0, status: 500, now: 0), .none)
        XCTAssertEqual(outliers.ejectionOverflowCount, 1)

        // Envoy's default: nothing at all.
        var envoyDefault = detector(endpoints: 4, percent: 10, alwaysEjectOne: false)
        XCTAssertEqual(envoyDefault.responseReceived(endpoint: 3, status: 500, now: 0), .none)
        XCTAssertEqual(envoyDefault.ejectedCount, 0)
        XCTAssertEqual(envoyDefault.ejectionOverflowCount, 1)
    }

    func testThePercentIsOfAllEndpointsRoundedDown() {
        // 67% of 3 is 2.01 endpoints: two may go, not three.
        var outliers = detector(endpoints: 3, percent: 67)
        XCTAssertEqual(outliers.responseReceived(endpoint: 0, status: 500, now: 0), .eject(endpoint: 0, until: 30 * second))
        XCTAssertEqual(outliers.responseReceived(endpoint: 1, status: 500, now: 0), .eject(endpoint: 1, until: 30 * second))
        XCTAssertEqual(outliers.responseReceived(endpoint: 2, status: 500, now: 0), .none)

        // 50% of 3 is 1.5: only one.
        var half = detector(endpoints: 3, percent: 50)
        XCTAssertEqual(half.responseReceived(endpoint: 0, status: 500, now: 0), .eject(endpoint: 0, until: 30 * second))
        XCTAssertEqual(half.responseReceived(endpoint: 1, status: 500, now: 0), .none)
    }

    func testSeveralEndpointsAreNeverAllEjectedBelow100Percent() {
        var outliers = detector(endpoints: 2, percent: 99)
        XCTAssertEqual(outliers.responseReceived(endpoint: 0, status: 500, now: 0), .eject(endpoint: 0, until: 30 * second))
        XCTAssertEqual(outliers.responseReceived(endpoint: 1, status: 500, now: 0), .none)
        XCTAssertFalse(outliers.allEjected)
        XCTAssertFalse(outliers.isAvailable(0))
        XCTAssertTrue(outliers.isAvailable(1))
    }

    func testWhenEveryEndpointIsEjectedEveryEndpointIsAvailable() {
        var outliers = detector(endpoints: 2, percent: 100)
        XCTAssertEqual(outliers.responseReceived(endpoint: 0, status: 500, now: 0), .eject(endpoint: 0, until: 30 * second))
        XCTAssertFalse(outliers.isAvailable(0))
        XCTAssertEqual(outliers.responseReceived(endpoint: 1, status: 500, now: 0), .eject(endpoint: 1, until: 30 * second))
        XCTAssertTrue(outliers.allEjected)
        XCTAssertTrue(outliers.isEjected(0))
        XCTAssertTrue(outliers.isAvailable(0))
        XCTAssertTrue(outliers.isAvailable(1))

        XCTAssertEqual(outliers.tick(now: 30 * second), [.uneject(endpoint: 0), .uneject(endpoint: 1)])
        XCTAssertFalse(outliers.allEjected)
    }

    func testASingleEndpointIsEjectedButStaysAvailable() {
        var outliers = OutlierDetector(settings: .init(), endpointCount: 1)
        XCTAssertEqual(answer(&outliers, 0, [500, 500, 500, 500, 500], at: 0),
                       [.none, .none, .none, .none, .eject(endpoint: 0, until: 30 * second)])
        XCTAssertTrue(outliers.isEjected(0))
        XCTAssertTrue(outliers.allEjected)
        XCTAssertTrue(outliers.isAvailable(0))
    }

    func testZeroPercentEjectsNothing() {
        var outliers = detector(endpoints: 4, percent: 0)
        XCTAssertEqual(outliers.responseReceived(endpoint: 0, status: 500, now: 0), .none)
        XCTAssertEqual(outliers.ejectedCount, 0)
        XCTAssertEqual(outliers.ejectionOverflowCount, 1)
    }

    // MARK: Ejection time

    func testTickUnejectsOnceTheEjectionTimeIsOver() {
        var outliers = detector(endpoints: 3)
        XCTAssertEqual(outliers.responseReceived(endpoint: 1, status: 500, now: 5 * second), .eject(endpoint: 1, until: 35 * second))
        for now in [10, 20, 30, 34] as [Int64] {
            XCTAssertEqual(outliers.tick(now: now * second), [], "at \(now) s")
            XCTAssertTrue(outliers.isEjected(1))
        }
        XCTAssertEqual(outliers.tick(now: 35 * second), [.uneject(endpoint: 1)])
        XCTAssertFalse(outliers.isEjected(1))
        XCTAssertNil(outliers.ejectedUntil(1))
        XCTAssertEqual(outliers.ejectedCount, 0)
        XCTAssertTrue(outliers.isAvailable(1))
        XCTAssertEqual(outliers.tick(now: 45 * second), [])
    }

    func testTickUnejectsSeveralEndpointsInIndexOrder() {
        var outliers = detector(endpoints: 3)
        XCTAssertEqual(outliers.responseReceived(endpoint: 2, status: 500, now: 0), .eject(endpoint: 2, until: 30 * second))
        XCTAssertEqual(outliers.responseReceived(endpoint: 0, status: 500, now: second), .eject(endpoint: 0, until: 31 * second))
        XCTAssertEqual(outliers.responseReceived(endpoint: 1, status: 500, now: 20 * second), .eject(endpoint: 1, until: 50 * second))
        XCTAssertEqual(outliers.tick(now: 40 * second), [.uneject(endpoint: 0), .uneject(endpoint: 2)])
        XCTAssertEqual(outliers.ejectedCount, 1)
        XCTAssertEqual(outliers.tick(now: 50 * second), [.uneject(endpoint: 1)])
    }

    func testAnswersWhileEjectedChangeNothing() {
        var outliers = detector(endpoints: 2, consecutive5xx: 2)
        XCTAssertEqual(answer(&outliers, 0, [500, 500], at: 0), [.none, .eject(endpoint: 0, until: 30 * second)])
        // Requests already sent to it still answer; that is no second ejection.
        XCTAssertEqual(answer(&outliers, 0, [500, 500, 500], at: second), [.none, .none, .none])
        XCTAssertEqual(outliers.ejectedUntil(0), 30 * second)
        XCTAssertEqual(outliers.ejectionMultiplier(0), 1)

        XCTAssertEqual(outliers.tick(now: 30 * second), [.uneject(endpoint: 0)])
        XCTAssertEqual(answer(&outliers, 0, [500, 500], at: 31 * second), [.none, .eject(endpoint: 0, until: 91 * second)])
    }

    func testUnejectionRestartsTheCounts() {
        var outliers = detector(endpoints: 2, consecutive5xx: 5, gateway: 2)
        // The gateway run trips on the fourth answer, with four 5xx counted.
        XCTAssertEqual(answer(&outliers, 0, [502, 500, 502, 503], at: 0),
                       [.none, .none, .none, .eject(endpoint: 0, until: 30 * second)])
        XCTAssertEqual(outliers.tick(now: 30 * second), [.uneject(endpoint: 0)])
        // Had the four stayed, this 500 would make five.
        XCTAssertEqual(answer(&outliers, 0, [500, 500, 500, 500], at: 31 * second), [.none, .none, .none, .none])
        XCTAssertEqual(outliers.responseReceived(endpoint: 0, status: 500, now: 31 * second),
                       .eject(endpoint: 0, until: 91 * second))
    }

    func testEjectionTimeGrowsWithEachEjection() {
        var outliers = detector(endpoints: 2)
        XCTAssertEqual(outliers.responseReceived(endpoint: 0, status: 500, now: 0), .eject(endpoint: 0, until: 30 * second))
        XCTAssertEqual(outliers.tick(now: 30 * second), [.uneject(endpoint: 0)])

        XCTAssertEqual(outliers.responseReceived(endpoint: 0, status: 500, now: 31 * second), .eject(endpoint: 0, until: 91 * second))
        XCTAssertEqual(outliers.ejectionMultiplier(0), 2)
        for now in [40, 50, 60, 70, 80, 90] as [Int64] {
            XCTAssertEqual(outliers.tick(now: now * second), [], "at \(now) s")
        }
        XCTAssertEqual(outliers.tick(now: 100 * second), [.uneject(endpoint: 0)])

        XCTAssertEqual(outliers.responseReceived(endpoint: 0, status: 500, now: 101 * second), .eject(endpoint: 0, until: 191 * second))
        XCTAssertEqual(outliers.ejectionMultiplier(0), 3)
    }

    func testTheMultiplierFallsByOneForEachIntervalInGoodStanding() {
        var outliers = detector(endpoints: 2)
        XCTAssertEqual(outliers.responseReceived(endpoint: 0, status: 500, now: 0), .eject(endpoint: 0, until: 30 * second))
        XCTAssertEqual(outliers.tick(now: 30 * second), [.uneject(endpoint: 0)])
        XCTAssertEqual(outliers.responseReceived(endpoint: 0, status: 500, now: 31 * second), .eject(endpoint: 0, until: 91 * second))
        // Ticks while ejected forgive nothing.
        XCTAssertEqual(outliers.tick(now: 90 * second), [])
        XCTAssertEqual(outliers.ejectionMultiplier(0), 2)
        // Nor does the tick that un-ejects, nor one less than an interval after it.
        XCTAssertEqual(outliers.tick(now: 100 * second), [.uneject(endpoint: 0)])
        XCTAssertEqual(outliers.ejectionMultiplier(0), 2)
        XCTAssertEqual(outliers.tick(now: 105 * second), [])
        XCTAssertEqual(outliers.ejectionMultiplier(0), 2)

        XCTAssertEqual(outliers.tick(now: 110 * second), [])
        XCTAssertEqual(outliers.ejectionMultiplier(0), 1)
        // Partly forgiven: the next ejection is two base times, not three.
        XCTAssertEqual(outliers.responseReceived(endpoint: 0, status: 500, now: 111 * second), .eject(endpoint: 0, until: 171 * second))
        XCTAssertEqual(outliers.tick(now: 171 * second), [.uneject(endpoint: 0)])
        XCTAssertEqual(outliers.ejectionMultiplier(0), 2)

        for (now, multiplier) in [(181, 1), (191, 0), (201, 0)] as [(Int64, Int)] {
            XCTAssertEqual(outliers.tick(now: now * second), [])
            XCTAssertEqual(outliers.ejectionMultiplier(0), multiplier, "at \(now) s")
        }
        // Fully forgiven: back to one base time.
        XCTAssertEqual(outliers.responseReceived(endpoint: 0, status: 500, now: 202 * second), .eject(endpoint: 0, until: 232 * second))
    }

    func testAnEndpointNeverEjectedKeepsAZeroMultiplier() {
        var outliers = detector(endpoints: 2)
        XCTAssertEqual(outliers.responseReceived(endpoint: 0, status: 500, now: 0), .eject(endpoint: 0, until: 30 * second))
        XCTAssertEqual(outliers.tick(now: 10 * second), [])
        XCTAssertEqual(outliers.ejectionMultiplier(1), 0)
        XCTAssertEqual(outliers.ejectionMultiplier(0), 1)
    }

    func testEjectionTimeIsCappedAtMaxEjectionTimeAndSoIsTheMultiplier() {
        var outliers = detector(endpoints: 2, base: 30, max: 60)
        let expected: [(now: Int64, until: Int64, multiplier: Int)] = [
            (0, 30, 1), (30, 90, 2), (90, 150, 3), (150, 210, 3),
        ]
        for step in expected {
            XCTAssertEqual(outliers.tick(now: step.now * second), step.now == 0 ? [] : [.uneject(endpoint: 0)])
            XCTAssertEqual(outliers.responseReceived(endpoint: 0, status: 500, now: step.now * second),
                           .eject(endpoint: 0, until: step.until * second), "at \(step.now) s")
            XCTAssertEqual(outliers.ejectionMultiplier(0), step.multiplier, "at \(step.now) s")
        }
    }

    func testAMaxEjectionTimeBelowTheBaseIsRaisedToIt() {
        var outliers = detector(endpoints: 2, base: 30, max: 10)
        XCTAssertEqual(outliers.responseReceived(endpoint: 0, status: 500, now: 0), .eject(endpoint: 0, until: 30 * second))
        XCTAssertEqual(outliers.tick(now: 30 * second), [.uneject(endpoint: 0)])
        XCTAssertEqual(outliers.responseReceived(endpoint: 0, status: 500, now: 30 * second), .eject(endpoint: 0, until: 60 * second))
    }

    func testAnEjectionEndingPastTheEndOfTheClockIsClamped() {
        var outliers = detector(endpoints: 2)
        XCTAssertEqual(outliers.responseReceived(endpoint: 0, status: 500, now: .max - 5), .eject(endpoint: 0, until: .max))
        XCTAssertEqual(outliers.tick(now: .max - 1), [])
        XCTAssertEqual(outliers.tick(now: .max), [.uneject(endpoint: 0)])
    }

    func testAServiceWithoutEndpointsHasNothingToDo() {
        var outliers = OutlierDetector(settings: .init(), endpointCount: 0)
        XCTAssertEqual(outliers.tick(now: 10 * second), [])
        XCTAssertFalse(outliers.allEjected)
        XCTAssertEqual(outliers.ejectedCount, 0)
    }
}
