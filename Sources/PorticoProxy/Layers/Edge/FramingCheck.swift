import PorticoHTTP1
import PorticoCore

/// The body's framing can be read one way only (`validateRequestFraming`: the request
/// smuggling rules); its length, when `Content-Length` gives it, is kept for the checks after.
final class FramingCheck: EdgeCheck {
    func check(_ request: inout EdgeRequest) -> EdgeVerdict {
        do {
            request.contentLength = try request.head.fields.validateRequestFraming(version: request.head.version)
            return .pass
        } catch {
            return .reject(LocalReply(error), close: true)
        }
    }
}
