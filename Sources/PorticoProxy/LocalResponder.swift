import NIOCore

/// Answers a request inside the gateway, whole, instead of proxying it: exec-mode functions
/// (PorticoFunctions' `ExecFunction`, one process per request) and lambda-mode ones
/// (`LambdaFunction`, an invocation through the Runtime API) implement it.
///
/// The request reaches it as plain values, its body gathered whole; the answer is a body, or
/// why there is none (which the proxy maps to a status).
public protocol LocalResponder: Sendable {
    /// Answers `request`; the future completes on `loop`, the request's event loop.
    func respond(to request: ExecRequest, on loop: EventLoop) -> EventLoopFuture<ExecOutcome>
}

/// A request to a local responder, as an exec-mode function's process sees it.
public struct ExecRequest: Sendable {
    public var method: String
    public var path: String
    public var query: String
    public var headers: [(String, String)]
    public var body: ByteBuffer
    public var remoteAddress: String
    /// `HTTP/1.1`, `HTTP/1.0` or `HTTP/2.0`, as the client spoke it.
    public var protocolName: String
    /// The gateway's id of the request (its access log's).
    public var requestID: String

    public init(method: String, path: String, query: String, headers: [(String, String)], body: ByteBuffer, remoteAddress: String,
                protocolName: String = "HTTP/1.1", requestID: String = "") {
        self.protocolName = protocolName
        self.requestID = requestID
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers
        self.body = body
        self.remoteAddress = remoteAddress
    }
}

/// A local responder's answer.
public enum ExecOutcome: Sendable {
    /// The response body (200).
    case ok(ByteBuffer)
    /// It failed (a process that exited otherwise, could not start, or wrote more than the
    /// response limit): 502.
    case failed(String)
    /// It ran past the request timeout: 504.
    case timedOut
    /// Too many requests waiting for it: 503.
    case queueFull
    /// A whole answer of its own (a Lambda handler's result): the status, the headers
    /// (`content-type` among them, else `application/octet-stream`), the body.
    case response(status: Int, headers: [(String, String)], body: ByteBuffer)
    /// It found no worker to run on (a Lambda function's start failed or timed out): the
    /// status a proxied request gets for the same reason.
    case unavailable(BackendUnavailable)
}
