import PorticoCore
import PorticoHTTP1

/// The proxy's failures as the replies they get.
extension LocalReply {
    var status: HTTPStatus { HTTPStatus(statusCode: statusCode) }

    static func body(for status: HTTPStatus) -> String {
        body(forStatusCode: status.code)
    }

    init(_ error: FramingError) {
        self = error == .unsupportedTransferCoding ? .unsupportedTransferCoding : .malformedRequest
    }

    init(_ unavailable: BackendUnavailable) {
        switch unavailable {
        case .queueFull: self = .overloaded
        case .startupTimeout: self = .workerStartTimeout
        case .draining: self = .draining
        case .crashLooping: self = .workerStartFailed
        }
    }
}
