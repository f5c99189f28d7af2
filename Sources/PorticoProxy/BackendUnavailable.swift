import PorticoHTTP1

/// Why a backend leased no endpoint for a try; each maps to the status the client gets.
public enum BackendUnavailable: Error, Sendable {
    /// Too many requests wait already: 503 with Retry-After.
    case queueFull
    /// No endpoint became ready in time (a function's startup timeout): 504.
    case startupTimeout
    /// The backend is going away and could not hand the request on: 503 with Retry-After.
    case draining
    /// The backend fails every start: 502.
    case crashLooping

    /// The answer the client gets.
    var response: (status: HTTPStatus, headers: [(String, String)]) {
        switch self {
        case .queueFull: return (.serviceUnavailable, [("retry-after", "1")])
        case .startupTimeout: return (.gatewayTimeout, [])
        case .draining: return (.serviceUnavailable, [("retry-after", "1")])
        case .crashLooping: return (.badGateway, [])
        }
    }
}
