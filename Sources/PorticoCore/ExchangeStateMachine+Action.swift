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
        /// Forward the body part just received; keep a copy for a retry if asked.
        case forwardRequestBody(keepForReplay: Bool)
        /// No connection yet: keep the body part for when there is one.
        case bufferRequestBody(keepForReplay: Bool)
        /// The answer is decided: the part is read and dropped.
        case dropRequestBody
        /// Send the request's end upstream.
        case sendRequestEnd(startPerTryTimer: Bool)
        /// Relay the upstream's response head to the client.
        case writeResponseHead(closeClientAfter: Bool)
        /// Relay the response's end; give the upstream connection back for reuse; close the
        /// client if asked.
        case writeResponseEnd(closeClient: Bool, finish: ExchangeOutcome)
        /// The response ended before the request did: the upstream connection is out of step
        /// (close it); the rest of the request is read and dropped.
        case writeResponseEndEarly(closeClient: Bool, finish: ExchangeOutcome)
        /// The request that a response ended early for is read whole: the client connection
        /// may carry the next one.
        case requestDrained
        /// Write a local answer now.
        case writeLocalAnswerNow(LocalReply, abandonUpstream: Bool, closeClient: Bool, finish: ExchangeOutcome)
        /// A local answer is decided but waits for the request's end (see `requestEnded`); the
        /// rest of the request is read and dropped.
        case deferLocalAnswer(abandonUpstream: Bool)
        /// The request ended: write the answer that waited for it.
        case writeLocalAnswer(LocalReply, closeClient: Bool, finish: ExchangeOutcome)
        /// Ask the retry budget; if it refuses, say so with `retryRefusedByBudget` and do what
        /// that returns instead. Otherwise close the failed try's connection (when it is still
        /// open), wait `backoff(retry:)` of the retry rules, then call `backoffElapsed`.
        case scheduleRetry(retry: Int, abandonUpstream: Bool)
        /// A 101 for an allowed upgrade: relay it and glue the two connections.
        case becomeTunnel(finish: ExchangeOutcome)
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
        /// The backend cannot serve the try (a function's queue is full, its worker did not
        /// start, it is draining; a service gone in a reload).
        case unavailable(LocalReply)
    }
}

/// How an exchange ended: the hook that access logs, metrics and tracing read.
public struct ExchangeOutcome: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        /// The upstream's response went to the client whole.
        case proxied
        /// The gateway answered.
        case local(LocalReply)
        /// A 101: the connection is a tunnel to the upstream now.
        case tunnelled
        /// The client left before the end (499 in the access log when no answer had begun).
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

    /// The status the access log and the metrics give the exchange.
    public var loggedStatus: Int {
        switch kind {
        case .local(let reply): return reply.statusCode
        case .clientLeft: return upstreamStatus == 0 ? 499 : upstreamStatus
        case .proxied, .tunnelled, .clientError, .upstreamResetMidResponse: return upstreamStatus
        }
    }
}
