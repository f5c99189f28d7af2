import NIOCore

/// A route's `timeout`: how long the exchange may wait for the backend's answer, over every
/// try together. The exchange machine keeps the clock (`ExchangeStateMachine.routeTimedOut`);
/// this layer says how long it runs for this request.
final class RouteTimeoutLayer: RequestLayer {
    let timeout: TimeAmount

    init(timeout: TimeAmount) {
        self.timeout = timeout
    }

    func requestHead(_ request: inout LayerRequest) -> LayerVerdict {
        request.timeout = timeout
        return .proceed
    }
}
