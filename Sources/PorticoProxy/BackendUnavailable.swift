/// Why a backend leased no endpoint for a try; `LocalReply` says what the client gets.
public enum BackendUnavailable: Error, Sendable {
    /// Too many requests wait already: 503 with Retry-After.
    case queueFull
    /// No endpoint became ready in time (a function's startup timeout): 504.
    case startupTimeout
    /// The backend is going away and could not hand the request on: 503 with Retry-After.
    case draining
    /// The backend fails every start: 502.
    case crashLooping

}
