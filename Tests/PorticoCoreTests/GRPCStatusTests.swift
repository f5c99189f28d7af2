import PorticoCore
import XCTest

final class GRPCStatusTests: XCTestCase {
    func testGatewayAnswersMapToTheStatusesClientsLookFor() {
        XCTAssertEqual(GRPCStatus.code(forHTTPStatus: 404), GRPCStatus.unimplemented)
        XCTAssertEqual(GRPCStatus.code(forHTTPStatus: 401), GRPCStatus.unauthenticated)
        XCTAssertEqual(GRPCStatus.code(forHTTPStatus: 403), GRPCStatus.permissionDenied)
        XCTAssertEqual(GRPCStatus.code(forHTTPStatus: 429), GRPCStatus.resourceExhausted)
        XCTAssertEqual(GRPCStatus.code(forHTTPStatus: 503), GRPCStatus.unavailable)
        XCTAssertEqual(GRPCStatus.code(forHTTPStatus: 502), GRPCStatus.unavailable)
        XCTAssertEqual(GRPCStatus.code(forHTTPStatus: 504), GRPCStatus.deadlineExceeded)
        XCTAssertEqual(GRPCStatus.code(forHTTPStatus: 400), GRPCStatus.internal)
        XCTAssertEqual(GRPCStatus.code(forHTTPStatus: 413), GRPCStatus.resourceExhausted)
        XCTAssertEqual(GRPCStatus.code(forHTTPStatus: 418), GRPCStatus.unknown)
    }

    func testMessagesArePercentEncoded() {
        XCTAssertEqual(GRPCStatus.encodeMessage("no route"), "no route")
        XCTAssertEqual(GRPCStatus.encodeMessage("50% off\r\nnext"), "50%25 off%0D%0Anext")
        XCTAssertEqual(GRPCStatus.encodeMessage("é"), "%C3%A9")
    }

    func testTimeouts() {
        XCTAssertEqual(GRPCStatus.timeoutNanoseconds("300m"), 300_000_000)
        XCTAssertEqual(GRPCStatus.timeoutNanoseconds("2S"), 2_000_000_000)
        XCTAssertEqual(GRPCStatus.timeoutNanoseconds("1H"), 3_600_000_000_000)
        XCTAssertEqual(GRPCStatus.timeoutNanoseconds("5u"), 5_000)
        XCTAssertEqual(GRPCStatus.timeoutNanoseconds("99999999n"), 99_999_999)
        XCTAssertNil(GRPCStatus.timeoutNanoseconds("123456789S"), "more than 8 digits")
        XCTAssertNil(GRPCStatus.timeoutNanoseconds("S"))
        XCTAssertNil(GRPCStatus.timeoutNanoseconds("10x"))
        XCTAssertNil(GRPCStatus.timeoutNanoseconds("-1S"))
        XCTAssertEqual(GRPCStatus.parse("14"), 14)
        XCTAssertNil(GRPCStatus.parse("1a"))
        XCTAssertNil(GRPCStatus.parse(""))
    }

    func testGRPCRetryConditionsAndRefusedStreams() {
        let rules = RetryRules(retries: 2, conditions: [.grpcUnavailable, .grpcResourceExhausted])
        XCTAssertTrue(rules.matches(.grpcStatus(14)))
        XCTAssertTrue(rules.matches(.grpcStatus(8)))
        XCTAssertFalse(rules.matches(.grpcStatus(13)))
        XCTAssertFalse(rules.matches(.grpcStatus(0)))
        XCTAssertFalse(rules.matches(.refusedStream))
        XCTAssertTrue(RetryRules(retries: 1, conditions: [.refusedStream]).matches(.refusedStream))
        XCTAssertTrue(RetryRules(retries: 1, conditions: [.reset]).matches(.refusedStream), "a refusal is a reset too")
        XCTAssertFalse(RetryRules(retries: 1, conditions: [.refusedStream]).matches(.reset))
    }

    func testARefusedStreamIsRetriedAndATrailersOnlyStatusToo() {
        var machine = ExchangeStateMachine(configuration: .init(retries: RetryRules(retries: 2, conditions: [.refusedStream, .grpcUnavailable])),
                                           requestHasBody: false)
        XCTAssertEqual(machine.leased(), .sendRequest(end: true, startPerTryTimer: false))
        XCTAssertEqual(machine.upstreamRefused(), .scheduleRetry(retry: 1, abandonUpstream: true))
        XCTAssertEqual(machine.backoffElapsed(), .leaseBackend)
        _ = machine.leased()
        XCTAssertEqual(machine.responseHeadReceived(status: 200, grpcStatus: 14), .scheduleRetry(retry: 2, abandonUpstream: true))
        // Without retries left: relayed as it is.
        var last = ExchangeStateMachine(configuration: .init(), requestHasBody: false)
        _ = last.leased()
        XCTAssertEqual(last.responseHeadReceived(status: 200, grpcStatus: 14), .writeResponseHead(closeClientAfter: false))
    }

    func testAMalformedBodyIsABadRequestThatClosesTheConnection() {
        var machine = ExchangeStateMachine(configuration: .init())
        _ = machine.leased()
        guard case .writeLocalAnswerNow(.malformedRequest, abandonUpstream: true, closeClient: true, _) = machine.requestBodyMalformed() else {
            return XCTFail("expected a 400 now")
        }
        XCTAssertTrue(machine.isFinished)
    }
}
