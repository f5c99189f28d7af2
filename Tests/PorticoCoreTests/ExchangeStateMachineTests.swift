import PorticoCore
import XCTest

/// The exchange machine event by event, for every way an exchange can end; no sockets.
final class ExchangeStateMachineTests: XCTestCase {
    typealias Machine = ExchangeStateMachine

    private let retryOnGatewayErrors = RetryRules(retries: 2, conditions: [.gatewayError, .connectFailure, .reset])

    private func finish(_ action: Machine.Action) -> ExchangeOutcome? {
        switch action {
        case .writeResponseEnd(_, let finish), .writeResponseEndEarly(_, let finish),
             .writeLocalAnswerNow(_, _, _, let finish), .writeLocalAnswer(_, _, let finish), .abort(_, let finish),
             .abandonUpstreamAndFinish(let finish), .cancelWaitAndFinish(let finish), .finishOnly(let finish),
             .becomeTunnel(let finish):
            return finish
        default:
            return nil
        }
    }

    // MARK: The plain path

    func testABodylessRequestIsProxiedAndTheConnectionReused() {
        var machine = Machine(configuration: .init(), requestHasBody: false)
        XCTAssertFalse(machine.holdsClientReads(upstreamWritable: false), "nothing more to read for this request")
        XCTAssertEqual(machine.leased(), .sendRequest(end: true, startPerTryTimer: false))
        XCTAssertEqual(machine.responseHeadReceived(status: 200), .writeResponseHead(closeClientAfter: false))
        XCTAssertTrue(machine.isResponding)
        let end = machine.responseEnded()
        XCTAssertEqual(end, .writeResponseEnd(closeClient: false,
                                              finish: ExchangeOutcome(kind: .proxied, tries: 1, requestBytes: 0, upstreamStatus: 200)))
        XCTAssertTrue(machine.isFinished)
        XCTAssertEqual(machine.routeTimedOut(), .none, "a finished exchange ignores late timers")
        XCTAssertEqual(machine.clientClosed(), .none)
        XCTAssertEqual(machine.upstreamClosed(), .none)
        XCTAssertEqual(machine.responseEnded(), .none)
    }

    func testTheRequestsEndComesAsAnEventByDefault() {
        var machine = Machine(configuration: .init())
        XCTAssertEqual(machine.leased(), .sendRequest(end: false, startPerTryTimer: false))
        XCTAssertEqual(machine.requestEnded(), .sendRequestEnd(startPerTryTimer: false))
        XCTAssertEqual(machine.requestEnded(), .none, "an end is sent once")
    }

    func testABodyWaitsForTheConnectionThenStreamsWithBackpressure() {
        var machine = Machine(configuration: .init(), requestHasBody: true)
        XCTAssertTrue(machine.holdsClientReads(upstreamWritable: true), "no connection yet: the body has nowhere to go")
        XCTAssertEqual(machine.requestBodyReceived(size: 100), .bufferRequestBody(keepForReplay: false))
        XCTAssertEqual(machine.leased(), .sendRequest(end: false, startPerTryTimer: false))
        XCTAssertFalse(machine.holdsClientReads(upstreamWritable: true))
        XCTAssertTrue(machine.holdsClientReads(upstreamWritable: false), "a full upstream holds the client back")
        XCTAssertEqual(machine.requestBodyReceived(size: 100), .forwardRequestBody(keepForReplay: false))
        XCTAssertEqual(machine.requestEnded(), .sendRequestEnd(startPerTryTimer: false))
        XCTAssertFalse(machine.holdsClientReads(upstreamWritable: false), "a complete request has nothing left to hold")
        XCTAssertEqual(machine.responseHeadReceived(status: 201), .writeResponseHead(closeClientAfter: false))
        XCTAssertEqual(finish(machine.responseEnded())?.requestBytes, 200)
    }

    func testTheBodyStreamsWhileTheResponseDoes() {
        var machine = Machine(configuration: .init(), requestHasBody: true)
        _ = machine.leased()
        XCTAssertEqual(machine.responseHeadReceived(status: 200), .writeResponseHead(closeClientAfter: false))
        XCTAssertEqual(machine.requestBodyReceived(size: 10), .forwardRequestBody(keepForReplay: false))
        XCTAssertEqual(machine.requestEnded(), .sendRequestEnd(startPerTryTimer: false),
                       "no per-try clock once the answer has begun")
        XCTAssertEqual(finish(machine.responseEnded())?.kind, .proxied)
    }

    func testAnHTTP10ClientIsClosedAfterItsResponse() {
        var machine = Machine(configuration: .init(closeClientAfterResponse: true), requestHasBody: false)
        _ = machine.leased()
        XCTAssertEqual(machine.responseHeadReceived(status: 200), .writeResponseHead(closeClientAfter: true))
        guard case .writeResponseEnd(closeClient: true, _) = machine.responseEnded() else { return XCTFail() }
    }

    // MARK: Early answers and limits

    func testAnUpstreamAnsweringBeforeTheBodyEndsDropsTheRest() {
        var machine = Machine(configuration: .init(), requestHasBody: true)
        _ = machine.leased()
        XCTAssertEqual(machine.requestBodyReceived(size: 10), .forwardRequestBody(keepForReplay: false))
        XCTAssertEqual(machine.responseHeadReceived(status: 413), .writeResponseHead(closeClientAfter: false))
        let early = machine.responseEnded()
        XCTAssertEqual(early, .writeResponseEndEarly(closeClient: false,
                                                     finish: ExchangeOutcome(kind: .proxied, tries: 1, requestBytes: 10, upstreamStatus: 413)))
        XCTAssertTrue(machine.isDrainingRequest)
        XCTAssertFalse(machine.holdsClientReads(upstreamWritable: false), "the rest is read to be dropped")
        XCTAssertEqual(machine.requestBodyReceived(size: 10), .dropRequestBody)
        XCTAssertEqual(machine.upstreamClosed(), .none, "that connection was given up")
        XCTAssertFalse(machine.isFinished, "the request is still being read")
        XCTAssertEqual(machine.requestEnded(), .requestDrained)
        XCTAssertTrue(machine.isFinished)
        XCTAssertEqual(machine.clientClosed(), .none, "the exchange finished once, at the response's end")
    }

    func testABodyOverTheLimitIs413AndClosesBeforeTheResponse() {
        var machine = Machine(configuration: .init(maxRequestBody: 100), requestHasBody: true)
        _ = machine.leased()
        _ = machine.requestBodyReceived(size: 60)
        let action = machine.requestBodyReceived(size: 60)
        guard case .writeLocalAnswerNow(.bodyTooLarge, abandonUpstream: true, closeClient: true, let finish) = action else {
            return XCTFail("\(action)")
        }
        XCTAssertEqual(finish.loggedStatus, 413)
        XCTAssertEqual(machine.requestBodyReceived(size: 1), .dropRequestBody)
    }

    func testABodyOverTheLimitAfterTheResponseBeganBreaksBothOff() {
        var machine = Machine(configuration: .init(maxRequestBody: 100), requestHasBody: true)
        _ = machine.leased()
        _ = machine.responseHeadReceived(status: 200)
        guard case .abort(.abandonBoth, let finish) = machine.requestBodyReceived(size: 101) else {
            return XCTFail()
        }
        XCTAssertEqual(finish.kind, .clientError)
        XCTAssertEqual(finish.loggedStatus, 200, "the log shows what the client was told")
    }

    func testABodyTheUpstreamHeadDoesNotFrameIs400() {
        var machine = Machine(configuration: .init(requestBodyFramed: false), requestHasBody: true)
        XCTAssertEqual(machine.requestBodyReceived(size: 0), .bufferRequestBody(keepForReplay: false),
                       "an empty DATA frame carries no byte to misread")
        guard case .writeLocalAnswerNow(.malformedRequest, abandonUpstream: false, closeClient: true, _) =
            machine.requestBodyReceived(size: 3) else { return XCTFail() }
    }

    func testALocalAnswerWaitsForTheRequestsEnd() {
        var machine = Machine(configuration: .init(), requestHasBody: true)
        XCTAssertEqual(machine.leaseFailed(.overloaded), .deferLocalAnswer(abandonUpstream: false))
        XCTAssertFalse(machine.holdsClientReads(upstreamWritable: false), "the rest must be read for the answer to go")
        XCTAssertEqual(machine.requestBodyReceived(size: 5), .dropRequestBody)
        XCTAssertEqual(machine.requestEnded(), .writeLocalAnswer(.breakerOpen, closeClient: false,
                                                                 finish: ExchangeOutcome(kind: .local(.breakerOpen), tries: 1, requestBytes: 5, upstreamStatus: 0)))
        XCTAssertTrue(machine.isFinished)
    }

    func testAClientClosedAfterItsAnswerHearsAFailureAtOnce() {
        var machine = Machine(configuration: .init(closeClientAfterResponse: true), requestHasBody: true)
        _ = machine.requestBodyReceived(size: 10)
        guard case .writeLocalAnswerNow(.upstreamConnectFailed, abandonUpstream: false, closeClient: true, let finish) =
            machine.leaseFailed(.connectFailed) else { return XCTFail("its connection closes: the rest need not be read") }
        XCTAssertEqual(finish, ExchangeOutcome(kind: .local(.upstreamConnectFailed), tries: 1, requestBytes: 10, upstreamStatus: 0))
        XCTAssertEqual(machine.requestBodyReceived(size: 10), .dropRequestBody)
    }

    func testAFunctionThatCannotGiveAWorkerAnswersItsReply() {
        var machine = Machine(configuration: .init(), requestHasBody: false)
        let action = machine.leaseFailed(.unavailable(.workerStartTimeout))
        guard case .writeLocalAnswerNow(.workerStartTimeout, false, false, let finish) = action else {
            return XCTFail("\(action)")
        }
        XCTAssertEqual(finish.loggedStatus, 504)
    }

    func testABodyTheBackendWillNotHoldWhileWaitingIs503AndClosesTheConnection() {
        var machine = Machine(configuration: .init(), requestHasBody: true)
        XCTAssertEqual(machine.requestBodyReceived(size: 3000), .bufferRequestBody(keepForReplay: false))
        let action = machine.waitingBodyRefused()
        guard case .writeLocalAnswerNow(.overloaded, abandonUpstream: false, closeClient: true, let finish) = action else {
            return XCTFail("the rest of the upload is not read, so the connection ends: \(action)")
        }
        XCTAssertEqual(finish.loggedStatus, 503)
        XCTAssertEqual(machine.requestBodyReceived(size: 10), .dropRequestBody, "nothing more is buffered")
        XCTAssertEqual(machine.waitingBodyRefused(), .none, "once")
    }

    // MARK: Retries

    func testAConnectFailureIsRetriedAfterABackoffAndThenSucceeds() {
        var machine = Machine(configuration: .init(retries: retryOnGatewayErrors), requestHasBody: false)
        XCTAssertEqual(machine.leaseFailed(.connectFailed), .scheduleRetry(retry: 1, abandonUpstream: false))
        XCTAssertEqual(machine.backoffElapsed(), .leaseBackend)
        XCTAssertEqual(machine.triesStarted, 2)
        XCTAssertEqual(machine.leased(), .sendRequest(end: true, startPerTryTimer: false))
        _ = machine.responseHeadReceived(status: 200)
        XCTAssertEqual(finish(machine.responseEnded())?.tries, 2)
    }

    func testA503IsRetriedUntilTheRetriesRunOutAndTheLastAnswerIsShown() {
        var machine = Machine(configuration: .init(retries: retryOnGatewayErrors), requestHasBody: false)
        for retry in 1...2 {
            _ = machine.leased()
            XCTAssertEqual(machine.responseHeadReceived(status: 503),
                           .scheduleRetry(retry: retry, abandonUpstream: true), "a failed try's answer is never shown")
            XCTAssertEqual(machine.backoffElapsed(), .leaseBackend)
        }
        _ = machine.leased()
        XCTAssertEqual(machine.responseHeadReceived(status: 503), .writeResponseHead(closeClientAfter: false),
                       "the last try's answer goes to the client")
        XCTAssertEqual(finish(machine.responseEnded())?.tries, 3)
    }

    func testAStatusTheRulesDoNotNameIsRelayed() {
        var machine = Machine(configuration: .init(retries: retryOnGatewayErrors), requestHasBody: false)
        _ = machine.leased()
        XCTAssertEqual(machine.responseHeadReceived(status: 500), .writeResponseHead(closeClientAfter: false))
    }

    func testWhenTheBudgetRefusesTheFailedAnswerIsRelayedOnItsConnection() {
        var machine = Machine(configuration: .init(retries: retryOnGatewayErrors), requestHasBody: false)
        _ = machine.leased()
        XCTAssertEqual(machine.responseHeadReceived(status: 503), .scheduleRetry(retry: 1, abandonUpstream: true))
        XCTAssertEqual(machine.retryRefusedByBudget(), .writeResponseHead(closeClientAfter: false))
        XCTAssertEqual(machine.retryRefusedByBudget(), .none, "refused once")
        XCTAssertEqual(machine.backoffElapsed(), .none, "no backoff runs")
        let end = machine.responseEnded()
        XCTAssertEqual(finish(end), ExchangeOutcome(kind: .proxied, tries: 1, requestBytes: 0, upstreamStatus: 503))
    }

    func testWhenTheBudgetRefusesAFailedConnectIsA502() {
        var machine = Machine(configuration: .init(retries: retryOnGatewayErrors), requestHasBody: true)
        XCTAssertEqual(machine.leaseFailed(.connectFailed), .scheduleRetry(retry: 1, abandonUpstream: false))
        XCTAssertEqual(machine.retryRefusedByBudget(), .deferLocalAnswer(abandonUpstream: false),
                       "the request is not over: its answer waits for its end")
        XCTAssertEqual(machine.requestEnded(), .writeLocalAnswer(.upstreamConnectFailed, closeClient: false,
                                                                 finish: ExchangeOutcome(kind: .local(.upstreamConnectFailed), tries: 1,
                                                                                         requestBytes: 0, upstreamStatus: 0)))
    }

    func testWhenTheBudgetRefusesAPerTryTimeoutTheConnectionIsAbandoned() {
        var machine = Machine(configuration: .init(retries: retryOnGatewayErrors, hasPerTryTimeout: true), requestHasBody: false)
        _ = machine.leased()
        XCTAssertEqual(machine.perTryTimedOut(), .scheduleRetry(retry: 1, abandonUpstream: true))
        guard case .writeLocalAnswerNow(.upstreamTimeout, abandonUpstream: true, closeClient: false, _) =
            machine.retryRefusedByBudget() else { return XCTFail() }
    }

    func testABodyLongerThanTheReplayBufferIsTriedOnce() {
        var machine = Machine(configuration: .init(retries: retryOnGatewayErrors, replayLimit: 10), requestHasBody: true)
        _ = machine.leased()
        XCTAssertEqual(machine.requestBodyReceived(size: 8), .forwardRequestBody(keepForReplay: true))
        XCTAssertEqual(machine.requestBodyReceived(size: 8), .forwardRequestBody(keepForReplay: false))
        _ = machine.requestEnded()
        let action = machine.upstreamClosed()
        guard case .writeLocalAnswerNow(.upstreamReset, true, false, _) = action else {
            return XCTFail("\(action)")
        }
    }

    func testARetryBuffersWhatArrivesDuringTheBackoff() {
        var machine = Machine(configuration: .init(retries: retryOnGatewayErrors), requestHasBody: true)
        _ = machine.leased()
        _ = machine.requestBodyReceived(size: 4)
        XCTAssertEqual(machine.upstreamClosed(), .scheduleRetry(retry: 1, abandonUpstream: true))
        XCTAssertTrue(machine.holdsClientReads(upstreamWritable: true), "no connection during the backoff")
        XCTAssertEqual(machine.requestBodyReceived(size: 4), .bufferRequestBody(keepForReplay: true))
        XCTAssertEqual(machine.requestEnded(), .none, "the end goes with the next try")
        XCTAssertEqual(machine.backoffElapsed(), .leaseBackend)
        XCTAssertEqual(machine.leased(), .sendRequest(end: true, startPerTryTimer: false))
    }

    func testAPerTryTimeoutIsRetriedAndItsConnectionClosed() {
        var machine = Machine(configuration: .init(retries: retryOnGatewayErrors, hasPerTryTimeout: true), requestHasBody: true)
        XCTAssertEqual(machine.leased(), .sendRequest(end: false, startPerTryTimer: false))
        XCTAssertEqual(machine.requestEnded(), .sendRequestEnd(startPerTryTimer: true), "the per-try clock starts once the request is sent")
        XCTAssertEqual(machine.perTryTimedOut(), .scheduleRetry(retry: 1, abandonUpstream: true))
        XCTAssertEqual(machine.backoffElapsed(), .leaseBackend)
        XCTAssertEqual(machine.leased(), .sendRequest(end: true, startPerTryTimer: true), "the retry sends the kept body and its end")
    }

    func testAPerTryTimeoutWithoutRetriesIs504() {
        var machine = Machine(configuration: .init(hasPerTryTimeout: true), requestHasBody: false)
        _ = machine.leased()
        guard case .writeLocalAnswerNow(.upstreamTimeout, true, false, _) = machine.perTryTimedOut() else { return XCTFail() }
    }

    // MARK: Timeouts, resets, clients leaving

    func testTheRouteTimeoutEndsEveryWait() {
        for setUp in [{ (m: inout Machine) in }, { m in _ = m.leased() },
                      { m in _ = m.leaseFailed(.connectFailed) }] as [(inout Machine) -> Void] {
            var machine = Machine(configuration: .init(retries: retryOnGatewayErrors), requestHasBody: false)
            setUp(&machine)
            guard case .writeLocalAnswerNow(.upstreamTimeout, _, false, _) = machine.routeTimedOut()
            else { return XCTFail() }
            XCTAssertTrue(machine.isFinished)
            XCTAssertEqual(machine.leased(), .releaseUpstream, "a connection that arrives late goes back")
            XCTAssertEqual(machine.backoffElapsed(), .none)
            XCTAssertEqual(machine.retryRefusedByBudget(), .none)
        }
    }

    func testATimeoutDuringAnUploadAnswersNowAndCloses() {
        var machine = Machine(configuration: .init(), requestHasBody: true)
        _ = machine.leased()
        _ = machine.requestBodyReceived(size: 10)
        guard case .writeLocalAnswerNow(.upstreamTimeout, abandonUpstream: true, closeClient: true, _) =
            machine.routeTimedOut() else { return XCTFail("the client is not made to finish its upload first") }
    }

    func testTheRouteTimeoutDoesNotCutAResponseInProgress() {
        var machine = Machine(configuration: .init(), requestHasBody: false)
        _ = machine.leased()
        _ = machine.responseHeadReceived(status: 200)
        XCTAssertEqual(machine.routeTimedOut(), .none)
    }

    func testAnUpstreamThatClosesMidResponseBreaksTheClientsResponseOff() {
        var machine = Machine(configuration: .init(), requestHasBody: false)
        _ = machine.leased()
        _ = machine.responseHeadReceived(status: 200)
        guard case .abort(.abandonBoth, let finish) = machine.upstreamClosed() else { return XCTFail() }
        XCTAssertEqual(finish.kind, .upstreamResetMidResponse)
        XCTAssertEqual(finish.loggedStatus, 200)
    }

    func testAClientThatLeavesEndsTheExchangeWhereverItIs() {
        var waiting = Machine(configuration: .init(), requestHasBody: false)
        let left = finish(waiting.clientClosed())
        XCTAssertEqual(left?.kind, .clientLeft)
        XCTAssertEqual(left?.loggedStatus, 499)
        XCTAssertEqual(waiting.leased(), .releaseUpstream)

        var sent = Machine(configuration: .init(), requestHasBody: false)
        _ = sent.leased()
        guard case .abandonUpstreamAndFinish = sent.clientClosed() else { return XCTFail() }

        var responding = Machine(configuration: .init(), requestHasBody: false)
        _ = responding.leased()
        _ = responding.responseHeadReceived(status: 200)
        guard case .abort(.abandonUpstream, let finish) = responding.clientClosed() else { return XCTFail() }
        XCTAssertEqual(finish.loggedStatus, 200, "the answer had begun")

        var backingOff = Machine(configuration: .init(retries: retryOnGatewayErrors), requestHasBody: false)
        _ = backingOff.leaseFailed(.connectFailed)
        guard case .cancelWaitAndFinish = backingOff.clientClosed() else { return XCTFail() }
        XCTAssertEqual(backingOff.backoffElapsed(), .none)
    }

    func testAClientThatLeavesBeforeADeferredAnswerStillFinishesOnce() {
        var machine = Machine(configuration: .init(), requestHasBody: true)
        _ = machine.leaseFailed(.overloaded)
        guard case .finishOnly(let finish) = machine.clientClosed() else { return XCTFail() }
        XCTAssertEqual(finish.kind, .clientLeft, "the answer was never written")
        XCTAssertEqual(finish.loggedStatus, 499)
        XCTAssertEqual(machine.clientClosed(), .none)
        XCTAssertEqual(machine.requestEnded(), .none)
    }

    // MARK: Upgrades

    func testAnAllowedUpgradeBecomesATunnel() {
        var machine = Machine(configuration: .init(upgradeAllowed: true), requestHasBody: false)
        _ = machine.leased()
        XCTAssertEqual(machine.responseHeadReceived(status: 101),
                       .becomeTunnel(finish: ExchangeOutcome(kind: .tunnelled, tries: 1, requestBytes: 0, upstreamStatus: 101)))
        XCTAssertEqual(machine.clientClosed(), .none, "the tunnel's glue owns both connections now")
        XCTAssertEqual(machine.upstreamClosed(), .none)
    }

    func testA101NobodyAskedForIs502() {
        var machine = Machine(configuration: .init(), requestHasBody: false)
        _ = machine.leased()
        guard case .writeLocalAnswerNow(.upstreamReset, true, false, _) = machine.responseHeadReceived(status: 101)
        else { return XCTFail() }
    }
}
