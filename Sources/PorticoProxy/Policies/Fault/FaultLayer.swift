import NIOCore
import PorticoConfig
import PorticoHTTP1

/// A route's `fault`: an injected delay before the backend, or an abort answered at once.
/// When both draws hit, the abort wins.
final class FaultLayer: RequestLayer {
    let fault: FaultConfig

    init(fault: FaultConfig) {
        self.fault = fault
    }

    func requestHead(_ request: inout LayerRequest) -> LayerVerdict {
        var delay: TimeAmount?
        if let configured = fault.delay, request.random.percentDraw() < configured.percent {
            delay = .nanoseconds(configured.duration.nanoseconds)
        }
        if let abort = fault.abort, request.random.percentDraw() < abort.percent {
            return .reject(status: HTTPStatus(statusCode: abort.status), headers: [], backend: "fault", reason: .fault)
        }
        return delay.map { .delay($0) } ?? .proceed
    }
}
