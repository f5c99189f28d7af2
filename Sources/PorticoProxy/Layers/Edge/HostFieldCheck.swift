import PorticoHTTP1

/// Two `Host` fields, or one that is not host[:port]: routing, policies and the backend could
/// each read a different host (RFC 9112 3.2 asks for 400).
final class HostFieldCheck: EdgeCheck {
    func check(_ request: inout EdgeRequest) -> EdgeVerdict {
        request.head.fields.hasValidHost ? .pass : .reject(.malformedRequest, close: true)
    }
}
