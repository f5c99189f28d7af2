import PorticoCore
import XCTest

/// The exchange machine event by event, for every way an exchange can end; no sockets.
final class ExchangeStateMachineTests: XCTestCase {
    typealias Machine = ExchangeStateMachine

    private let retryOnGatewayErrors = RetryRules(retries: 2, conditions: [.gatewayError, .connectFailure, .reset])

    private func finish(_ action: Machine.Action) -> ExchangeOutcome? {
        switch action {
        case .writeResponseEnd(_, _, let finish), .writeResponseEndEarly(_, _, let finish),
             .writeLocalAnswerNow(_, _, _, let finish), .writeLocalAnswer(_, _, let finish), .abort(_, let finish),
             .abandonUpstreamAndFinish(let finish), .cancelWaitAndFinish(let finish), .finishOnly(let finish):
            return finish
        default:
            return nil
        }
    }

    // MARK: The plain path

    func testABodylessRequestIsProxiedAndTheConnectionReused() {
        var machine = Machine(configuration: .init(), requestHasBody: false)
        XCTAssertEqual(machine.leased(), .sendRequest(end: true, startPerTryTimer: false))
        XCTAssertEqual(machine.responseHeadReceived(status: 200, budgetAllowsRetry: true), .writeResponseHead(closeClientAfter: false))
        let end = machine.responseEnded()
        XCTAssertEqual(end, .writeResponseEnd(releaseUpstream: true, closeClient: false,
                                              finish: ExchangeOutcome(kind: .proxied, tries: 1, requestBytes: 0, upstreamStatus: 200)))
        XCTAssertTrue(machine.isFinished)
        XCTAssertEqual(machine.routeTimedOut(), .none, "a finished exchange ignores late timers")
        XCTAssertEqual(machine.clientClosed(), .none)
    }

    func testABodyWaitsForTheConnectionThenStreamsWithBackpressure() {
        var machine = Machine(configuration: .init(), requestHasBody: true)
        XCTAssertEqual(machine.requestBodyReceived(size: 100, upstreamWritable: false),
                       .bufferRequestBody(keepForReplay: false, holdClientReads: true), "no connection yet: keep it, stop reading")
        XCTAssertEqual(machine.upstreamWritabilityChanged(writable: true), .none, "no upstream to write to yet")
        XCTAssertEqual(machine.leased(), .sendRequest(end: false, startPerTryTimer: false))
        XCTAssertEqual(machine.upstreamWritabilityChanged(writable: true), .resumeClientReads)
        XCTAssertEqual(machine.requestBodyReceived(size: 100, upstreamWritable: false),
                       .forwardRequestBody(keepForReplay: false, holdClientReads: true))
        XCTAssertEqual(machine.upstreamWritabilityChanged(writable: true), .resumeClientReads)
        XCTAssertEqual(machine.requestEnded(), .sendRequestEnd(startPerTryTimer: false))
        XCTAssertEqual(machine.responseHeadReceived(status: 201, budgetAllowsRetry: true), .writeResponseHead(closeClientAfter: false))
        XCTAssertEqual(finish(machine.responseEnded())?.requestBytes, 200)
    }

    func testAnHTTP10ClientIsClosedAfterItsResponse() {
        var machine = Machine(configuration: .init(closeClientAfterResponse: true), requestHasBody: false)
        _ = machine.leased()
        XCTAssertEqual(machine.responseHeadReceived(status: 200, budgetAllowsRetry: true), .writeResponseHead(closeClientAfter: true))
        guard case .writeResponseEnd(_, closeClient: true, _) = machine.responseEnded() else { return XCTFail() }
    }

    // MARK: Early answers and limits

    func testAnUpstreamAnsweringBeforeTheBodyEndsDropsTheRest() {
        var machine = Machine(configuration: .init(), requestHasBody: true)
        _ = machine.leased()
        XCTAssertEqual(machine.requestBodyReceived(size: 10, upstreamWritable: false),
                       .forwardRequestBody(keepForReplay: false, holdClientReads: true))
        XCTAssertEqual(machine.responseHeadReceived(status: 413, budgetAllowsRetry: true), .writeResponseHead(closeClientAfter: false))
        let early = machine.responseEnded()
        XCTAssertEqual(early, .writeResponseEndEarly(closeClient: false, resumeClientReads: true,
                                                     finish: ExchangeOutcome(kind: .proxied, tries: 1, requestBytes: 10, upstreamStatus: 413)))
        XCTAssertEqual(machine.requestBodyReceived(size: 10, upstreamWritable: true), .dropRequestBody)
        XCTAssertFalse(machine.isFinished, "the request is still being read")
        XCTAssertEqual(machine.requestEnded(), .none)
        XCTAssertTrue(machine.isFinished)
    }

    func testABodyOverTheLimitIs413AndClosesBeforeTheResponse() {
        var machine = Machine(configuration: .init(maxRequestBody: 100), requestHasBody: true)
        _ = machine.leased()
        _ = machine.requestBodyReceived(size: 60, upstreamWritable: true)
        let action = machine.requestBodyReceived(size: 60, upstreamWritable: true)
        guard case .writeLocalAnswerNow(let answer, abandonUpstream: true, closeClient: true, _) = action else {
            return XCTFail("\(action)")
        }
        XCTAssertEqual(answer, LocalAnswer(status: 413, reason: .bodyTooLarge))
    }

    func testABodyOverTheLimitAfterTheResponseBeganBreaksBothOff() {
        var machine = Machine(configuration: .init(maxRequestBody: 100), requestHasBody: true)
        _ = machine.leased()
        _ = machine.responseHeadReceived(status: 200, budgetAllowsRetry: true)
        guard case .abort(.abandonBoth, let finish) = machine.requestBodyReceived(size: 101, upstreamWritable: true) else {
            return XCTFail()
        }
        XCTAssertEqual(finish.kind, .clientError)
    }

    func testALocalAnswerWaitsForTheRequestsEnd() {
        var machine = Machine(configuration: .init(), requestHasBody: true)
        XCTAssertEqual(machine.leaseFailed(.overloaded, budgetAllowsRetry: true),
                       .deferLocalAnswer(abandonUpstream: false, resumeClientReads: false))
        XCTAssertEqual(machine.requestBodyReceived(size: 5, upstreamWritable: true), .dropRequestBody)
        let answer = LocalAnswer(status: 503, reason: .breakerOpen)
        XCTAssertEqual(machine.requestEnded(), .writeLocalAnswer(answer, closeClient: false,
                                                                 finish: ExchangeOutcome(kind: .local(answer), tries: 1, requestBytes: 5, upstreamStatus: 0)))
    }

    func testAFunctionThatCannotGiveAWorkerAnswersItsStatus() {
        var machine = Machine(configuration: .init(), requestHasBody: false)
        let action = machine.leaseFailed(.unavailable(status: 504, reason: .workerStartFailed), budgetAllowsRetry: true)
        guard case .writeLocalAnswerNow(LocalAnswer(status: 504, reason: .workerStartFailed), false, false, _) = action else {
            return XCTFail("\(action)")
        }
    }

    // MARK: Retries

    func testAConnectFailureIsRetriedAfterABackoffAndThenSucceeds() {
        var machine = Machine(configuration: .init(retries: retryOnGatewayErrors), requestHasBody: false)
        XCTAssertEqual(machine.leaseFailed(.connectFailed, budgetAllowsRetry: true), .scheduleRetry(retry: 1, abandonUpstream: false))
        XCTAssertEqual(machine.backoffElapsed(), .leaseBackend)
        XCTAssertEqual(machine.triesStarted, 2)
        XCTAssertEqual(machine.leased(), .sendRequest(end: true, startPerTryTimer: false))
        _ = machine.responseHeadReceived(status: 200, budgetAllowsRetry: true)
        XCTAssertEqual(finish(machine.responseEnded())?.tries, 2)
    }

    func testA503IsRetriedUntilTheRetriesRunOutAndTheLastAnswerIsShown() {
        var machine = Machine(configuration: .init(retries: retryOnGatewayErrors), requestHasBody: false)
        for retry in 1...2 {
            _ = machine.leased()
            XCTAssertEqual(machine.responseHeadReceived(status: 503, budgetAllowsRetry: true),
                           .scheduleRetry(retry: retry, abandonUpstream: true), "a failed try's answer is never shown")
            XCTAssertEqual(machine.backoffElapsed(), .leaseBackend)
        }
        _ = machine.leased()
        XCTAssertEqual(machine.responseHeadReceived(status: 503, budgetAllowsRetry: true), .writeResponseHead(closeClientAfter: false),
                       "the last try's answer goes to the client")
        XCTAssertEqual(finish(machine.responseEnded())?.tries, 3)
    }

    func testNoRetryWhenTheBudgetSaysNo() {
        var machine = Machine(configuration: .init(retries: retryOnGatewayErrors), requestHasBody: false)
        _ = machine.leased()
        XCTAssertEqual(machine.responseHeadReceived(status: 503, budgetAllowsRetry: false), .writeResponseHead(closeClientAfter: false))
    }

    func testABodyLongerThanTheReplayBufferIsTriedOnce() {
        var machine = Machine(configuration: .init(retries: retryOnGatewayErrors, replayLimit: 10), requestHasBody: true)
        _ = machine.leased()
        XCTAssertEqual(machine.requestBodyReceived(size: 8, upstreamWritable: true),
                       .forwardRequestBody(keepForReplay: true, holdClientReads: false))
        XCTAssertEqual(machine.requestBodyReceived(size: 8, upstreamWritable: true),
                       .forwardRequestBody(keepForReplay: false, holdClientReads: false))
        _ = machine.requestEnded()
        let action = machine.upstreamClosed(budgetAllowsRetry: true)
        guard case .writeLocalAnswerNow(LocalAnswer(status: 502, reason: .upstreamReset), false, false, _) = action else {
            return XCTFail("\(action)")
        }
    }

    func testAPerTryTimeoutIsRetriedAndItsConnectionClosed() {
        var machine = Machine(configuration: .init(retries: retryOnGatewayErrors, hasPerTryTimeout: true), requestHasBody: true)
        XCTAssertEqual(machine.leased(), .sendRequest(end: false, startPerTryTimer: false))
        XCTAssertEqual(machine.requestEnded(), .sendRequestEnd(startPerTryTimer: true), "the per-try clock starts once the request is sent")
        XCTAssertEqual(machine.perTryTimedOut(budgetAllowsRetry: true), .scheduleRetry(retry: 1, abandonUpstream: true))
        XCTAssertEqual(machine.backoffElapsed(), .leaseBackend)
        XCTAssertEqual(machine.leased(), .sendRequest(end: true, startPerTryTimer: true), "the retry sends the kept body and its end")
    }

    func testAPerTryTimeoutWithoutRetriesIs504() {
        var machine = Machine(configuration: .init(hasPerTryTimeout: true), requestHasBody: false)
        _ = machine.leased()
        guard case .writeLocalAnswerNow(LocalAnswer(status: 504, reason: .upstreamTimeout), true, false, _) =
            machine.perTryTimedOut(budgetAllowsRetry: true) else { return XCTFail() }
    }

    // MARK: Timeouts, resets, clients leaving

    func testTheRouteTimeoutEndsEveryWait() {
        for setUp in [{ (m: inout Machine) in }, { m in _ = m.leased() },
                      { m in _ = m.leaseFailed(.connectFailed, budgetAllowsRetry: true) }] as [(inout Machine) -> Void] {
            var machine = Machine(configuration: .init(retries: retryOnGatewayErrors), requestHasBody: false)
            setUp(&machine)
            guard case .writeLocalAnswerNow(LocalAnswer(status: 504, reason: .upstreamTimeout), _, false, _) = machine.routeTimedOut()
            else { return XCTFail() }
            XCTAssertTrue(machine.isFinished)
            XCTAssertEqual(machine.leased(), .releaseUpstream, "a connection that arrives late goes back")
            XCTAssertEqual(machine.backoffElapsed(), .none)
        }
    }

    func testTheRouteTimeoutDoesNotCutAResponseInProgress() {
        var machine = Machine(configuration: .init(), requestHasBody: false)
        _ = machine.leased()
        _ = machine.responseHeadReceived(status: 200, budgetAllowsRetry: true)
        XCTAssertEqual(machine.routeTimedOut(), .none)
    }

    func testAnUpstreamThatClosesMidResponseBreaksTheClientsResponseOff() {
        var machine = Machine(configuration: .init(), requestHasBody: false)
        _ = machine.leased()
        _ = machine.responseHeadReceived(status: 200, budgetAllowsRetry: true)
        guard case .abort(.abandonBoth, let finish) = machine.upstreamClosed(budgetAllowsRetry: true) else { return XCTFail() }
        XCTAssertEqual(finish.kind, .upstreamResetMidResponse)
    }

    func testAClientThatLeavesEndsTheExchangeWhereverItIs() {
        var waiting = Machine(configuration: .init(), requestHasBody: false)
        XCTAssertEqual(finish(waiting.clientClosed())?.kind, .clientLeft)
        XCTAssertEqual(waiting.leased(), .releaseUpstream)

        var sent = Machine(configuration: .init(), requestHasBody: false)
        _ = sent.leased()
        guard case .abandonUpstreamAndFinish = sent.clientClosed() else { return XCTFail() }

        var responding = Machine(configuration: .init(), requestHasBody: false)
        _ = responding.leased()
        _ = responding.responseHeadReceived(status: 200, budgetAllowsRetry: true)
        guard case .abort(.abandonUpstream, _) = responding.clientClosed() else { return XCTFail() }

        var backingOff = Machine(configuration: .init(retries: retryOnGatewayErrors), requestHasBody: false)
        _ = backingOff.leaseFailed(.connectFailed, budgetAllowsRetry: true)
        guard case .cancelWaitAndFinish = backingOff.clientClosed() else { return XCTFail() }
        XCTAssertEqual(backingOff.backoffElapsed(), .none)
    }

    func testAClientThatLeavesBeforeADeferredAnswerStillFinishesOnce() {
        var machine = Machine(configuration: .init(), requestHasBody: true)
        _ = machine.leaseFailed(.overloaded, budgetAllowsRetry: true)
        guard case .finishOnly(let finish) = machine.clientClosed() else { return XCTFail() }
        XCTAssertEqual(finish.kind, .local(LocalAnswer(status: 503, reason: .breakerOpen)))
        XCTAssertEqual(machine.clientClosed(), .none)
        XCTAssertEqual(machine.requestEnded(), .none)
    }

    // MARK: Upgrades

    func testAnAllowedUpgradeBecomesATunnel() {
        var machine = Machine(configuration: .init(upgradeAllowed: true), requestHasBody: false)
        _ = machine.leased()
        XCTAssertEqual(machine.responseHeadReceived(status: 101, budgetAllowsRetry: true), .becomeTunnel)
        XCTAssertEqual(machine.clientClosed(), .none, "the tunnel's glue owns both connections now")
    }

    func testA101NobodyAskedForIs502() {
        var machine = Machine(configuration: .init(), requestHasBody: false)
        _ = machine.leased()
        guard case .writeLocalAnswerNow(LocalAnswer(status: 502, reason: .upstreamProtocolError), true, false, _) =
            machine.responseHeadReceived(status: 101, budgetAllowsRetry: true) else { return XCTFail() }
    }
}
