import PorticoHTTP1
import PorticoRouting

/// The target, normalized once (dot segments, percent-encoding, slashes) so that routes and
/// policies read the path the backend will get (`PathNormalizer`). The connection stays open:
/// the request's framing was fine.
final class PathCheck: EdgeCheck {
    func check(_ request: inout EdgeRequest) -> EdgeVerdict {
        switch PathNormalizer.normalize(request.head.target, method: request.head.method) {
        case .success(let normalized):
            request.target = normalized
            return .pass
        case .failure:
            return .reject(.malformedRequest, close: false)
        }
    }
}
