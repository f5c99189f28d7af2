/// Every answer the gateway writes itself because a request failed or could not be served,
/// and the one place that gives each its status, headers and body.
///
/// In the pure core because the exchange machine decides most of them; the proxy adds the
/// mappings from its own error types (`LocalReply+Proxy`).
///
/// (Answers a policy decides, a route's direct response or redirect, and an exec function's
/// output are not failures: their layer or route says what to answer.)
public enum LocalReply: Sendable, Equatable {
    /// Framing, `Host`, the target or the path cannot be read one way only: 400.
    case malformedRequest
    /// The head (target and fields) is over `limits.maxRequestHeaders`: 431.
    case headersTooLarge
    /// The body is over `limits.maxRequestBody`: 413.
    case bodyTooLarge
    /// A transfer coding Portico does not implement (`gzip, chunked`): 501.
    case unsupportedTransferCoding
    /// No route matches: 404.
    case noRoute
    /// The route's service or function is not there (a function not deployed yet): 503.
    case noBackend
    /// No connection to the endpoint: 502.
    case upstreamConnectFailed
    /// The endpoint closed or reset before its answer, or answered what cannot be relayed: 502.
    case upstreamReset
    /// No answer within the route's, the try's or the function's timeout: 504.
    case upstreamTimeout
    /// The service's circuit breaker has as many requests waiting as it allows: 503.
    case breakerOpen
    /// The retry budget or a function's queue is full: 503, try again in a second.
    case overloaded
    /// A function is going away and could not hand the request on: 503, try again.
    case draining
    /// A function's worker did not become ready within its startup timeout: 504.
    case workerStartTimeout
    /// A function fails every start: 502.
    case workerStartFailed
    /// An exec function failed (exit status, or no output): 502.
    case functionFailed

    public var statusCode: Int {
        switch self {
        case .malformedRequest: return 400
        case .headersTooLarge: return 431
        case .bodyTooLarge: return 413
        case .unsupportedTransferCoding: return 501
        case .noRoute: return 404
        case .noBackend, .breakerOpen, .overloaded, .draining: return 503
        case .upstreamConnectFailed, .upstreamReset, .workerStartFailed, .functionFailed: return 502
        case .upstreamTimeout, .workerStartTimeout: return 504
        }
    }

    /// `Retry-After` where waiting a moment is likely to help (RFC 9110 10.2.3).
    public var headers: [(String, String)] {
        switch self {
        case .overloaded, .draining: return [("retry-after", "1")]
        default: return []
        }
    }

    /// A short body that names the status and nothing of Portico's insides.
    public var body: String {
        Self.body(forStatusCode: statusCode)
    }

    public static func body(forStatusCode code: Int) -> String {
        switch code {
        case 400: return "bad request\n"
        case 404: return "not found\n"
        case 413: return "request body too large\n"
        case 431: return "request headers too large\n"
        case 501: return "not implemented\n"
        case 502: return "upstream unavailable\n"
        case 503: return "service unavailable\n"
        case 504: return "upstream timed out\n"
        default: return ""
        }
    }
}
