extension ExchangeStateMachine {
    /// What the shell does after an event. One action per event, each a complete instruction
    /// (a list would cost an allocation per event); `finish` payloads are the exchange's end.
    public enum Action: Sendable, Equatable {
        case none
        /// Ask the backend for an endpoint: a new try starts.
        case leaseBackend
        /// Send the request head on the leased connection, with the body kept so far (buffered,
        /// or the replay copy on a retry); with `end`, the request's end too.
        case sendRequest(end: Bool, startPerTryTimer: Bool)
        /// Forward the body part just received; keep a copy for a retry if asked; stop reading
        /// the client while the upstream cannot take more.
        case forwardRequestBody(keepForReplay: Bool, holdClientReads: Bool)
        /// No connection yet: keep the body part for when there is one.
        case bufferRequestBody(keepForReplay: Bool, holdClientReads: Bool)
        /// The answer is decided: the part is read and dropped.
        case dropRequestBody
        /// Send the request's end upstream.
        case sendRequestEnd(startPerTryTimer: Bool)
        case resumeClientReads
        /// Relay the upstream's response head to the client.
        case writeResponseHead(closeClientAfter: Bool)
        /// Relay the response's end; give the upstream connection back; close the client if asked.
        case writeResponseEnd(releaseUpstream: Bool, closeClient: Bool, finish: ExchangeOutcome)
        /// The response ended before the request did: the upstream connection is out of step
        /// (close it); the rest of the request is read and dropped.
        case writeResponseEndEarly(closeClient: Bool, resumeClientReads: Bool, finish: ExchangeOutcome)
        /// Write a local answer now.
        case writeLocalAnswerNow(LocalAnswer, abandonUpstream: Bool, closeClient: Bool, finish: ExchangeOutcome)
        /// A local answer is decided but waits for the request's end (see `requestEnded`).
        case deferLocalAnswer(abandonUpstream: Bool, resumeClientReads: Bool)
        /// The request ended: write the answer that waited for it.
        case writeLocalAnswer(LocalAnswer, closeClient: Bool, finish: ExchangeOutcome)
        /// Wait `backoff(retry:)` of the retry rules, then call `backoffElapsed`; close the
        /// failed try's connection first when it is still open.
        case scheduleRetry(retry: Int, abandonUpstream: Bool)
        /// A 101 for an allowed upgrade: relay it and glue the two connections.
        case becomeTunnel
        /// The exchange breaks off: close what `Ending` names.
        case abort(Ending, finish: ExchangeOutcome)
        case abandonUpstreamAndFinish(ExchangeOutcome)
        /// Stop waiting for the backend (cancel the lease or the backoff) and end.
        case cancelWaitAndFinish(ExchangeOutcome)
        case finishOnly(ExchangeOutcome)
        /// A connection arrived for an exchange that is over: give it back.
        case releaseUpstream
    }

    /// What an exchange that breaks off closes.
    public enum Ending: Sendable, Equatable {
        /// The upstream connection (the client is gone, or its stream reset).
        case abandonUpstream
        /// Both: the client's response cannot be finished.
        case abandonBoth
    }

    /// Why the backend gave no endpoint.
    public enum LeaseFailure: Sendable, Equatable {
        case connectFailed
        /// The circuit breaker's queue is full.
        case overloaded
        /// A function could not give a worker (queue full, startup timeout, crash loop, draining).
        case unavailable(status: Int, reason: LocalReason)
    }
}

/// An answer the gateway writes itself, with the reason the metrics and the access log give.
public struct LocalAnswer: Sendable, Equatable {
    public var status: Int
    public var reason: LocalReason

    public init(status: Int, reason: LocalReason) {
        self.status = status
        self.reason = reason
    }
}

/// Why the gateway answered by itself (the `reason` label of local replies).
public enum LocalReason: String, Sendable, Equatable {
    case upstreamConnectFailed = "upstream_connect_failed"
    case upstreamReset = "upstream_reset"
    case upstreamTimeout = "upstream_timeout"
    case upstreamProtocolError = "upstream_protocol_error"
    case breakerOpen = "breaker_open"
    case queueFull = "queue_full"
    case workerStartFailed = "worker_start_failed"
    case draining
    case bodyTooLarge = "body_too_large"
}

/// How an exchange ended: the hook that access logs, metrics and tracing read.
public struct ExchangeOutcome: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        /// The upstream's response went to the client whole.
        case proxied
        /// The gateway answered.
        case local(LocalAnswer)
        /// The client left before the end (499 in the access log).
        case clientLeft
        /// The client broke the rules mid-response (a body over the limit).
        case clientError
        /// The upstream broke off mid-response.
        case upstreamResetMidResponse
    }

    public var kind: Kind
    public var tries: Int
    public var requestBytes: Int
    /// The upstream's status, 0 when none reached the client.
    public var upstreamStatus: Int

    public init(kind: Kind, tries: Int, requestBytes: Int, upstreamStatus: Int) {
        self.kind = kind
        self.tries = tries
        self.requestBytes = requestBytes
        self.upstreamStatus = upstreamStatus
    }
}
