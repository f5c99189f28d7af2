/// One proxied request's life, from the moment its head has passed the request layers to the
/// moment it is over: leasing a backend for each try, streaming the request body with
/// backpressure, relaying the response, retries with backoff and per-try timeouts, the route
/// timeout, upgrades, the client leaving, the upstream closing, and local answers.
///
/// Pure, as async-http-client's `HTTPRequestStateMachine`: events in, one `Action` out; the
/// shell (a channel handler) owns the sockets, the timers and the bytes, and does what the
/// action says. Body bytes never pass through here, only their sizes, so the machine costs no
/// allocation. Protocol-neutral: HTTP/1 and HTTP/2 clients and upstreams look the same to it.
///
/// Every ending goes through `.finish`, exactly once, with what the access log, the metrics and
/// tracing need (see `ExchangeOutcome`).
public struct ExchangeStateMachine: Sendable {
    public struct Configuration: Sendable, Equatable {
        /// The route's retry rules; nil or `retries == 0`: one try.
        public var retries: RetryRules?
        /// Request body bytes the shell keeps so that a retry can send them again; a longer
        /// body makes the request one-try only once it passes this.
        public var replayLimit: Int
        public var maxRequestBody: Int
        /// The client connection cannot carry another request after this one (HTTP/1.0
        /// without keep-alive, an upgrade request that was not tunnelled).
        public var closeClientAfterResponse: Bool
        /// The request asked for an upgrade the route allows: a 101 makes a tunnel.
        public var upgradeAllowed: Bool
        /// A try may wait this long for its response head once its request is sent whole.
        public var hasPerTryTimeout: Bool

        public init(retries: RetryRules? = nil, replayLimit: Int = 64 * 1024, maxRequestBody: Int = 10 << 20,
                    closeClientAfterResponse: Bool = false, upgradeAllowed: Bool = false, hasPerTryTimeout: Bool = false) {
            self.retries = retries
            self.hasPerTryTimeout = hasPerTryTimeout
            self.replayLimit = replayLimit
            self.maxRequestBody = maxRequestBody
            self.closeClientAfterResponse = closeClientAfterResponse
            self.upgradeAllowed = upgradeAllowed
        }
    }

    enum Phase: Sendable, Equatable {
        /// Waiting for the backend to hand out an endpoint (a connection or a worker).
        case leasing
        /// A try is on its connection; its response head has not come.
        case awaitingResponse
        /// Between a failed try and the next one.
        case backingOff
        /// The response head went to the client; its body is flowing.
        case responding
        /// The response is decided and written (or waiting for the request's end to be);
        /// the rest of the request body is read and dropped.
        case drainingRequest
        /// Switched protocols: the shell glues the two connections.
        case tunnel
        case finished
    }

    let configuration: Configuration
    var phase = Phase.leasing
    /// Whether the client's request has ended (its end, or its last DATA frame, arrived).
    var requestComplete = false
    var requestBytes = 0
    /// Whether every body byte so far is kept for a retry.
    var replayable = true
    /// Tries started; the first is 1.
    var tries = 1
    var hasUpstream = false
    var responseStatus = 0
    /// A local answer decided before the request ended, written once it does.
    var pendingAnswer: LocalAnswer?
    /// The client reads were held because the body had nowhere to go.
    var clientReadsHeld = false

    public init(configuration: Configuration, requestHasBody: Bool) {
        self.configuration = configuration
        self.requestComplete = !requestHasBody
    }

    public var isFinished: Bool { phase == .finished }
    public var triesStarted: Int { tries }

    // MARK: The backend

    /// The backend handed out an endpoint and the shell holds its connection.
    public mutating func leased() -> Action {
        guard phase == .leasing else { return .releaseUpstream }  // the exchange ended meanwhile
        phase = .awaitingResponse
        hasUpstream = true
        // The head, what body there is so far (buffered or replayed), and its end if it came.
        return .sendRequest(end: requestComplete, startPerTryTimer: requestComplete && hasPerTryTimeout)
    }

    /// The backend could not hand out an endpoint.
    public mutating func leaseFailed(_ failure: LeaseFailure, budgetAllowsRetry: Bool) -> Action {
        guard phase == .leasing else { return .none }
        switch failure {
        case .connectFailed:
            return tryFailed(.connectFailure, budgetAllowsRetry: budgetAllowsRetry, status: 502, reason: .upstreamConnectFailed)
        case .overloaded:
            return answer(LocalAnswer(status: 503, reason: .breakerOpen))
        case .unavailable(let status, let reason):
            return answer(LocalAnswer(status: status, reason: reason))
        }
    }

    // MARK: The request body

    /// A part of the request body arrived from the client (`size` bytes).
    public mutating func requestBodyReceived(size: Int, upstreamWritable: Bool) -> Action {
        requestBytes += size
        switch phase {
        case .finished, .tunnel, .drainingRequest:
            return .dropRequestBody
        case .leasing, .awaitingResponse, .backingOff, .responding:
            break
        }
        if requestBytes > configuration.maxRequestBody {
            if phase == .responding {
                // The answer has begun: it cannot become a 413, and the exchange cannot go on.
                return end(.abandonBoth, outcome: .clientError)
            }
            let abandon = hasUpstream
            hasUpstream = false
            return answer(LocalAnswer(status: 413, reason: .bodyTooLarge), abandonUpstream: abandon, closeClient: true)
        }
        if replayable && requestBytes > configuration.replayLimit { replayable = false }
        let keep = replayable && retriesConfigured
        guard hasUpstream else {
            clientReadsHeld = true
            return .bufferRequestBody(keepForReplay: keep, holdClientReads: true)
        }
        if !upstreamWritable { clientReadsHeld = true }
        return .forwardRequestBody(keepForReplay: keep, holdClientReads: !upstreamWritable)
    }

    /// The client's request ended.
    public mutating func requestEnded() -> Action {
        requestComplete = true
        switch phase {
        case .awaitingResponse:
            return .sendRequestEnd(startPerTryTimer: hasPerTryTimeout)
        case .responding:
            return .sendRequestEnd(startPerTryTimer: false)
        case .drainingRequest:
            // A local answer waited for the request to end, so that a pipelined request
            // cannot start while this one is still being read.
            if let pending = pendingAnswer {
                pendingAnswer = nil
                phase = .finished
                return .writeLocalAnswer(pending, closeClient: configuration.closeClientAfterResponse, finish: outcome(.local(pending)))
            }
            // The response already ended early, and said so.
            phase = .finished
            return .none
        case .leasing, .backingOff, .tunnel, .finished:
            return .none
        }
    }

    /// The upstream can take more (or can take no more): client reads follow.
    public mutating func upstreamWritabilityChanged(writable: Bool) -> Action {
        guard writable, clientReadsHeld, hasUpstream else { return .none }
        clientReadsHeld = false
        return .resumeClientReads
    }

    // MARK: The response

    /// The upstream's response head (a final one; interim 1xx answers are the shell's).
    public mutating func responseHeadReceived(status: Int, budgetAllowsRetry: Bool) -> Action {
        guard phase == .awaitingResponse else { return .none }
        if status == 101 {
            guard configuration.upgradeAllowed else {
                // A 101 nobody asked for cannot be relayed safely.
                return failTry(status: 502, reason: .upstreamProtocolError)
            }
            phase = .tunnel
            responseStatus = 101
            return .becomeTunnel
        }
        if canRetry, let rules = configuration.retries, rules.matches(.status(status)), budgetAllowsRetry {
            return scheduleRetry(abandon: true)
        }
        phase = .responding
        responseStatus = status
        return .writeResponseHead(closeClientAfter: configuration.closeClientAfterResponse)
    }

    /// The response ended; `upstreamReusable` when the upstream connection's framing is intact.
    public mutating func responseEnded() -> Action {
        guard phase == .responding else { return .none }
        if requestComplete {
            phase = .finished
            return .writeResponseEnd(releaseUpstream: true, closeClient: configuration.closeClientAfterResponse,
                                     finish: outcome(.proxied))
        }
        // The upstream answered before reading the whole body: its connection is out of step,
        // and the client's remaining body is read and dropped.
        phase = .drainingRequest
        hasUpstream = false
        let resume = clientReadsHeld
        clientReadsHeld = false
        return .writeResponseEndEarly(closeClient: configuration.closeClientAfterResponse, resumeClientReads: resume,
                                      finish: outcome(.proxied))
    }

    /// The upstream connection closed or reset.
    public mutating func upstreamClosed(budgetAllowsRetry: Bool) -> Action {
        hasUpstream = false
        switch phase {
        case .awaitingResponse:
            return tryFailed(.reset, budgetAllowsRetry: budgetAllowsRetry, status: 502, reason: .upstreamReset)
        case .responding:
            // Mid-response: the client cannot be told more than that its answer broke off.
            return end(.abandonBoth, outcome: .upstreamResetMidResponse)
        case .leasing, .backingOff, .drainingRequest, .tunnel, .finished:
            return .none
        }
    }

    // MARK: Time

    /// The per-try timeout passed before the response head.
    public mutating func perTryTimedOut(budgetAllowsRetry: Bool) -> Action {
        guard phase == .awaitingResponse else { return .none }
        return tryFailed(.perTryTimeout, budgetAllowsRetry: budgetAllowsRetry, status: 504, reason: .upstreamTimeout)
    }

    /// The backoff before the next try is over.
    public mutating func backoffElapsed() -> Action {
        guard phase == .backingOff else { return .none }
        tries += 1
        phase = .leasing
        return .leaseBackend
    }

    /// The route's timeout passed (it bounds every try together).
    public mutating func routeTimedOut() -> Action {
        switch phase {
        case .leasing, .awaitingResponse, .backingOff:
            let abandon = hasUpstream
            hasUpstream = false
            return answer(LocalAnswer(status: 504, reason: .upstreamTimeout), abandonUpstream: abandon)
        case .responding, .drainingRequest, .tunnel, .finished:
            return .none
        }
    }

    // MARK: The client

    /// The client's connection closed (or its HTTP/2 stream was reset).
    public mutating func clientClosed() -> Action {
        switch phase {
        case .finished, .tunnel:
            return .none
        case .drainingRequest:
            phase = .finished
            // A local answer that was waiting for the request's end will never be written.
            if let pending = pendingAnswer {
                pendingAnswer = nil
                return .finishOnly(outcome(.local(pending)))
            }
            return .none
        case .responding:
            return end(.abandonUpstream, outcome: .clientLeft)
        case .leasing, .awaitingResponse, .backingOff:
            let abandon = hasUpstream
            hasUpstream = false
            phase = .finished
            return abandon ? .abandonUpstreamAndFinish(outcome(.clientLeft)) : .cancelWaitAndFinish(outcome(.clientLeft))
        }
    }

    // MARK: Helpers

    private var retriesConfigured: Bool { (configuration.retries?.retries ?? 0) > 0 }
    private var hasPerTryTimeout: Bool { configuration.hasPerTryTimeout }

    /// Another try is allowed by the count and the body (the budget is asked separately).
    private var canRetry: Bool {
        guard let rules = configuration.retries else { return false }
        return tries <= rules.retries && replayable
    }

    private mutating func tryFailed(_ failure: RetryRules.Outcome, budgetAllowsRetry: Bool, status: Int,
                                    reason: LocalReason) -> Action {
        if canRetry, let rules = configuration.retries, rules.matches(failure), budgetAllowsRetry {
            return scheduleRetry(abandon: hasUpstream)
        }
        return failTry(status: status, reason: reason)
    }

    private mutating func failTry(status: Int, reason: LocalReason) -> Action {
        let abandon = hasUpstream
        hasUpstream = false
        return answer(LocalAnswer(status: status, reason: reason), abandonUpstream: abandon)
    }

    private mutating func scheduleRetry(abandon: Bool) -> Action {
        hasUpstream = false
        phase = .backingOff
        return .scheduleRetry(retry: tries, abandonUpstream: abandon)
    }

    /// A local answer: now if the request is complete (or the connection closes after it),
    /// else once the request ends.
    private mutating func answer(_ answer: LocalAnswer, abandonUpstream: Bool = false, closeClient: Bool = false) -> Action {
        let close = closeClient || configuration.closeClientAfterResponse
        if requestComplete || closeClient {
            phase = .finished
            return .writeLocalAnswerNow(answer, abandonUpstream: abandonUpstream, closeClient: close,
                                        finish: outcome(.local(answer)))
        }
        phase = .drainingRequest
        pendingAnswer = answer
        let resume = clientReadsHeld
        clientReadsHeld = false
        return .deferLocalAnswer(abandonUpstream: abandonUpstream, resumeClientReads: resume)
    }

    private mutating func end(_ ending: Ending, outcome kind: ExchangeOutcome.Kind) -> Action {
        phase = .finished
        hasUpstream = false
        return .abort(ending, finish: outcome(kind))
    }

    private func outcome(_ kind: ExchangeOutcome.Kind) -> ExchangeOutcome {
        ExchangeOutcome(kind: kind, tries: tries, requestBytes: requestBytes, upstreamStatus: responseStatus)
    }
}
