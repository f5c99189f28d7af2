/// Why the gateway answered a request itself rather than relaying a backend's answer: the
/// `reason` label of `portico_local_replies_total`, the access log's `local_reply`, and what
/// tracing and the tap can say about an answer (Envoy's response flags and response code
/// details play this part).
///
/// A plain enum with a fixed `name` each, so the hot path carries one byte and never builds a
/// string: `name` returns literals.
public enum LocalReplyReason: UInt8, Sendable, CaseIterable, Hashable {
    /// The request cannot be read one way only (framing, `Host`, target, path), or its body is
    /// not what its head says (a gRPC-Web text body that is not base64): 400.
    case badRequest
    /// The head is over `limits.maxRequestHeaders`: 431.
    case headersTooLarge
    /// The head took longer than `limits.requestHeadersTimeout` from its first byte: 408.
    case requestHeadersTimeout
    /// The body is over `limits.maxRequestBody`: 413.
    case bodyTooLarge
    /// A transfer coding Portico does not implement: 501.
    case unsupportedTransferCoding
    /// No route matches: 404.
    case noRoute
    /// The route's service or function is not there: 503.
    case noBackend
    /// A `jwt` policy wanted a token and there was none: 401.
    case jwtMissing
    /// A token was there and no `jwt` policy accepted it: 401.
    case jwtInvalid
    /// An `authorization` policy refused the request: 403.
    case authzDenied
    /// A `rateLimit` policy refused the request: 429.
    case rateLimited
    /// A route's `fault` aborted the request.
    case fault
    /// A `cors` policy refused a preflight (origin or method not allowed): 403.
    case corsDenied
    /// A `cors` policy answered a preflight: 200.
    case corsPreflight
    /// The route answers itself (`directResponse`).
    case directResponse
    /// The route redirects (`redirect`).
    case redirect
    /// An HTTP/2 extended CONNECT for a protocol the route does not tunnel: 403.
    case upgradeRefused
    /// No connection to the endpoint: 502.
    case upstreamConnectFailed
    /// The endpoint closed or reset before its answer, or answered what cannot be relayed: 502.
    case upstreamReset
    /// No answer within the route's, the try's or the function's timeout: 504.
    case upstreamTimeout
    /// The service's circuit breaker has as many requests waiting as it allows: 503.
    case breakerOpen
    /// A function's queue (or its bound on bodies waiting for a worker) is full: 503.
    case queueFull
    /// A function is going away and could not hand the request on: 503.
    case draining
    /// A function's worker did not become ready within its startup timeout: 504.
    case workerStartTimeout
    /// A function fails every start: 502.
    case workerStartFailed
    /// An exec function failed (exit status, or no output): 502.
    case functionFailed

    /// The stable snake_case name: a Prometheus label value and an access-log value. Renaming
    /// one breaks dashboards and alerts.
    public var name: String {
        switch self {
        case .badRequest: return "bad_request"
        case .headersTooLarge: return "headers_too_large"
        case .requestHeadersTimeout: return "request_headers_timeout"
        case .bodyTooLarge: return "body_too_large"
        case .unsupportedTransferCoding: return "unsupported_transfer_coding"
        case .noRoute: return "no_route"
        case .noBackend: return "no_backend"
        case .jwtMissing: return "jwt_missing"
        case .jwtInvalid: return "jwt_invalid"
        case .authzDenied: return "authz_denied"
        case .rateLimited: return "rate_limited"
        case .fault: return "fault"
        case .corsDenied: return "cors_denied"
        case .corsPreflight: return "cors_preflight"
        case .directResponse: return "direct_response"
        case .redirect: return "redirect"
        case .upgradeRefused: return "upgrade_refused"
        case .upstreamConnectFailed: return "upstream_connect_failed"
        case .upstreamReset: return "upstream_reset"
        case .upstreamTimeout: return "upstream_timeout"
        case .breakerOpen: return "breaker_open"
        case .queueFull: return "queue_full"
        case .draining: return "draining"
        case .workerStartTimeout: return "worker_start_timeout"
        case .workerStartFailed: return "worker_start_failed"
        case .functionFailed: return "function_failed"
        }
    }
}

extension LocalReply {
    /// Why the gateway gave this reply.
    public var reason: LocalReplyReason {
        switch self {
        case .malformedRequest: return .badRequest
        case .headersTooLarge: return .headersTooLarge
        case .bodyTooLarge: return .bodyTooLarge
        case .unsupportedTransferCoding: return .unsupportedTransferCoding
        case .noRoute: return .noRoute
        case .noBackend: return .noBackend
        case .upstreamConnectFailed: return .upstreamConnectFailed
        case .upstreamReset: return .upstreamReset
        case .upstreamTimeout: return .upstreamTimeout
        case .breakerOpen: return .breakerOpen
        // The only replies `overloaded` stands for are a function's full queue and its full
        // bound on waiting bodies (a retry budget that refuses relays the failed try's answer).
        case .overloaded: return .queueFull
        case .draining: return .draining
        case .workerStartTimeout: return .workerStartTimeout
        case .workerStartFailed: return .workerStartFailed
        case .functionFailed: return .functionFailed
        }
    }
}
