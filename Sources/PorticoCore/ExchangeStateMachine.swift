/// One proxied request's life, from the moment its head has passed the request layers to the
/// moment it is over: leasing a backend for each try, streaming the request body with
/// backpressure, relaying the response, retries with backoff and per-try timeouts, the route
/// timeout, upgrades, the client leaving, the upstream closing, and local answers.
///
/// Pure, as async-http-client's `HTTPRequestStateMachine`: events in, one `Action` out; the
/// shell (`ProxyHandler`) owns the sockets, the timers and the bytes, and does what the action
/// says. Body bytes never pass through here, only their sizes, so the machine costs no
/// allocation. Protocol-neutral: HTTP/1 and HTTP/2 clients and upstreams look the same to it.
///
/// Every ending goes through an action with a `finish` payload, exactly once, with what the
/// access log, the metrics and tracing need (see `ExchangeOutcome`).
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
        /// The upstream head frames a body (content-length or chunked). An HTTP/2 request may
        /// carry DATA without saying so in a field: sent on unframed, its bytes would read
        /// upstream as another request.
        public var requestBodyFramed: Bool

        public init(retries: RetryRules? = nil, replayLimit: Int = 64 * 1024, maxRequestBody: Int = 10 << 20,
                    closeClientAfterResponse: Bool = false, upgradeAllowed: Bool = false, hasPerTryTimeout: Bool = false,
                    requestBodyFramed: Bool = true) {
            self.retries = retries
            self.hasPerTryTimeout = hasPerTryTimeout
            self.replayLimit = replayLimit
            self.maxRequestBody = maxRequestBody
            self.closeClientAfterResponse = closeClientAfterResponse
            self.upgradeAllowed = upgradeAllowed
            self.requestBodyFramed = requestBodyFramed
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

    /// What a try that a retry was scheduled for would have come to, kept until the shell
    /// says whether the retry budget allows the retry (`retryRefusedByBudget`).
    enum FailedTry: Sendable, Equatable {
        /// The upstream's answer, to relay after all.
        case response(status: Int)
        case reply(LocalReply)
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
    var pendingReply: LocalReply?
    /// Set with `.scheduleRetry`, cleared once the backoff ends or the retry is refused.
    var failedTry: FailedTry?
    /// Whether the failed try still held its connection when its retry was scheduled.
    var failedTryHadUpstream = false

    /// `requestHasBody: false` when the request is known to be whole with its head; otherwise
    /// its end comes as `requestEnded`.
    public init(configuration: Configuration, requestHasBody: Bool = true) {
        self.configuration = configuration
        self.requestComplete = !requestHasBody
    }

    public var isFinished: Bool { phase == .finished }
    public var triesStarted: Int { tries }
    /// Waiting for an endpoint for the current try: one that arrives now is used.
    public var isLeasing: Bool { phase == .leasing }
    /// A try's request is on its connection and its answer has not begun.
    public var isAwaitingResponse: Bool { phase == .awaitingResponse }
    /// The upstream's response is being relayed to the client.
    public var isResponding: Bool { phase == .responding }
    /// The answer is done or decided; only the rest of the request is still to be read.
    public var isDrainingRequest: Bool { phase == .drainingRequest }

    /// Whether a read from the client should wait: the request body has nowhere to go (no
    /// connection yet, or one that cannot take more). Asked whenever the client could be
    /// read; the shell issues a read it held once this turns false.
    public func holdsClientReads(upstreamWritable: Bool) -> Bool {
        guard !requestComplete else { return false }
        switch phase {
        case .leasing, .backingOff:
            return true
        case .awaitingResponse, .responding:
            return !(hasUpstream && upstreamWritable)
        case .drainingRequest, .tunnel, .finished:
            return false
        }
    }

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
    public mutating func leaseFailed(_ failure: LeaseFailure) -> Action {
        guard phase == .leasing else { return .none }
        switch failure {
        case .connectFailed:
            return tryFailed(.connectFailure, reply: .upstreamConnectFailed)
        case .overloaded:
            return answer(.breakerOpen)
        case .unavailable(let reply):
            return answer(reply)
        }
    }

    /// The backend will hold no more of the body while the request waits for its lease (a
    /// function's `queueBodyLimit`): 503 with Retry-After now, and the connection closes,
    /// because the rest of the body is not read (draining it would take the whole upload).
    public mutating func waitingBodyRefused() -> Action {
        guard phase == .leasing else { return .none }
        return answer(.overloaded, closeClient: true)
    }

    /// The retry budget refused the retry `.scheduleRetry` asked for: the failed try's own
    /// answer goes to the client instead (a relayed status, or the gateway's reply).
    public mutating func retryRefusedByBudget() -> Action {
        guard phase == .backingOff, let failed = failedTry else { return .none }
        failedTry = nil
        hasUpstream = failedTryHadUpstream
        switch failed {
        case .response(let status):
            phase = .responding
            responseStatus = status
            return .writeResponseHead(closeClientAfter: configuration.closeClientAfterResponse)
        case .reply(let reply):
            return failTry(reply)
        }
    }

    // MARK: The request body

    /// A part of the request body arrived from the client (`size` bytes).
    public mutating func requestBodyReceived(size: Int) -> Action {
        requestBytes += size
        switch phase {
        case .finished, .tunnel, .drainingRequest:
            return .dropRequestBody
        case .leasing, .awaitingResponse, .backingOff, .responding:
            break
        }
        if requestBytes > configuration.maxRequestBody || (size > 0 && !configuration.requestBodyFramed) {
            if phase == .responding {
                // The answer has begun: it cannot become a 4xx, and the exchange cannot go on.
                return end(.abandonBoth, outcome: .clientError)
            }
            let abandon = hasUpstream
            hasUpstream = false
            let reply: LocalReply = configuration.requestBodyFramed ? .bodyTooLarge : .malformedRequest
            return answer(reply, abandonUpstream: abandon, closeClient: true)
        }
        if replayable && requestBytes > configuration.replayLimit { replayable = false }
        let keep = replayable && retriesConfigured
        guard hasUpstream else { return .bufferRequestBody(keepForReplay: keep) }
        return .forwardRequestBody(keepForReplay: keep)
    }

    /// The request body cannot be read as what its head says it is (a gRPC-Web text body that
    /// is not base64): 400, and the connection closes, as for a body over its limit.
    public mutating func requestBodyMalformed() -> Action {
        switch phase {
        case .finished, .tunnel, .drainingRequest:
            return .dropRequestBody
        case .responding:
            return end(.abandonBoth, outcome: .clientError)
        case .leasing, .awaitingResponse, .backingOff:
            let abandon = hasUpstream
            hasUpstream = false
            return answer(.malformedRequest, abandonUpstream: abandon, closeClient: true)
        }
    }

    /// The client's request ended.
    public mutating func requestEnded() -> Action {
        guard !requestComplete else { return .none }
        requestComplete = true
        switch phase {
        case .awaitingResponse:
            return .sendRequestEnd(startPerTryTimer: hasPerTryTimeout)
        case .responding:
            return .sendRequestEnd(startPerTryTimer: false)
        case .drainingRequest:
            phase = .finished
            // A local answer waited for the request to end, so that a pipelined request
            // cannot start while this one is still being read.
            if let pending = pendingReply {
                pendingReply = nil
                return .writeLocalAnswer(pending, closeClient: configuration.closeClientAfterResponse,
                                         finish: outcome(.local(pending)))
            }
            // The response already ended early, and said so.
            return .requestDrained
        case .leasing, .backingOff, .tunnel, .finished:
            return .none
        }
    }

    // MARK: The response

    /// The upstream's response head (a final one; interim 1xx answers are the shell's).
    /// `grpcStatus`: the `grpc-status` the head carries (a gRPC trailers-only answer), which
    /// the gRPC retry conditions look at.
    public mutating func responseHeadReceived(status: Int, grpcStatus: Int? = nil) -> Action {
        guard phase == .awaitingResponse else { return .none }
        if status == 101 {
            guard configuration.upgradeAllowed else {
                // A 101 nobody asked for cannot be relayed safely.
                return failTry(.upstreamReset)
            }
            phase = .tunnel
            hasUpstream = false
            responseStatus = 101
            return .becomeTunnel(finish: outcome(.tunnelled))
        }
        if canRetry, let rules = configuration.retries,
           rules.matches(.status(status)) || grpcStatus.map({ rules.matches(.grpcStatus($0)) }) == true {
            return scheduleRetry(after: .response(status: status))
        }
        phase = .responding
        responseStatus = status
        return .writeResponseHead(closeClientAfter: configuration.closeClientAfterResponse)
    }

    /// The response ended.
    public mutating func responseEnded() -> Action {
        guard phase == .responding else { return .none }
        hasUpstream = false
        if requestComplete {
            phase = .finished
            return .writeResponseEnd(closeClient: configuration.closeClientAfterResponse, finish: outcome(.proxied))
        }
        // The upstream answered before reading the whole body: its connection is out of step,
        // and the client's remaining body is read and dropped.
        phase = .drainingRequest
        return .writeResponseEndEarly(closeClient: configuration.closeClientAfterResponse, finish: outcome(.proxied))
    }

    /// The upstream connection closed or reset.
    public mutating func upstreamClosed() -> Action {
        guard hasUpstream else { return .none }
        switch phase {
        case .awaitingResponse:
            return tryFailed(.reset, reply: .upstreamReset)
        case .responding:
            // Mid-response: the client cannot be told more than that its answer broke off.
            return end(.abandonBoth, outcome: .upstreamResetMidResponse)
        case .leasing, .backingOff, .drainingRequest, .tunnel, .finished:
            hasUpstream = false
            return .none
        }
    }

    /// The upstream refused the request before processing it (HTTP/2 REFUSED_STREAM, or a
    /// stream its GOAWAY said it never started): a reset that is known safe to retry.
    public mutating func upstreamRefused() -> Action {
        guard hasUpstream, phase == .awaitingResponse else { return upstreamClosed() }
        return tryFailed(.refusedStream, reply: .upstreamReset)
    }

    // MARK: Time

    /// The per-try timeout passed before the response head.
    public mutating func perTryTimedOut() -> Action {
        guard phase == .awaitingResponse else { return .none }
        return tryFailed(.perTryTimeout, reply: .upstreamTimeout)
    }

    /// The backoff before the next try is over.
    public mutating func backoffElapsed() -> Action {
        guard phase == .backingOff else { return .none }
        failedTry = nil
        tries += 1
        phase = .leasing
        return .leaseBackend
    }

    /// The route's timeout passed (it bounds every try together).
    public mutating func routeTimedOut() -> Action {
        switch phase {
        case .leasing, .awaitingResponse, .backingOff:
            failedTry = nil
            let abandon = hasUpstream
            hasUpstream = false
            return timedOut(abandonUpstream: abandon)
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
            // A local answer that was waiting for the request's end will never be written: the
            // client left before hearing it.
            if pendingReply != nil {
                pendingReply = nil
                return .finishOnly(outcome(.clientLeft))
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

    /// Another try is allowed by the count and the body (the budget is asked by the shell).
    private var canRetry: Bool {
        guard let rules = configuration.retries else { return false }
        return tries <= rules.retries && replayable
    }

    private mutating func tryFailed(_ failure: RetryRules.Outcome, reply: LocalReply) -> Action {
        if canRetry, let rules = configuration.retries, rules.matches(failure) {
            return scheduleRetry(after: .reply(reply))
        }
        return failTry(reply)
    }

    private mutating func failTry(_ reply: LocalReply) -> Action {
        let abandon = hasUpstream
        hasUpstream = false
        if reply == .upstreamTimeout { return timedOut(abandonUpstream: abandon) }
        return answer(reply, abandonUpstream: abandon)
    }

    /// A client still sending its body is not made to finish it first: it hears now, and its
    /// connection closes behind the answer.
    private mutating func timedOut(abandonUpstream: Bool) -> Action {
        answer(.upstreamTimeout, abandonUpstream: abandonUpstream, closeClient: !requestComplete)
    }

    private mutating func scheduleRetry(after failed: FailedTry) -> Action {
        failedTry = failed
        failedTryHadUpstream = hasUpstream
        let abandon = hasUpstream
        hasUpstream = false
        phase = .backingOff
        return .scheduleRetry(retry: tries, abandonUpstream: abandon)
    }

    /// A local answer: now if the request is complete (or the connection closes after it),
    /// else once the request ends.
    private mutating func answer(_ reply: LocalReply, abandonUpstream: Bool = false, closeClient: Bool = false) -> Action {
        // A connection that closes after this answer need not read the rest of the request.
        let close = closeClient || configuration.closeClientAfterResponse
        if requestComplete || close {
            phase = .finished
            return .writeLocalAnswerNow(reply, abandonUpstream: abandonUpstream, closeClient: close,
                                        finish: outcome(.local(reply)))
        }
        phase = .drainingRequest
        pendingReply = reply
        return .deferLocalAnswer(abandonUpstream: abandonUpstream)
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
