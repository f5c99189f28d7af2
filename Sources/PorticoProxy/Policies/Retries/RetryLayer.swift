import NIOCore
import PorticoConfig
import PorticoCore

/// A route's `retries`: the exchange machine retries the request by these rules
/// (`ExchangeStateMachine.Configuration.retries`), the retry budget permitting.
final class RetryLayer: RequestLayer {
    let retries: CompiledRetries

    init(retries: CompiledRetries) {
        self.retries = retries
    }

    func requestHead(_ request: inout LayerRequest) -> LayerVerdict {
        request.retries = retries
        return .proceed
    }
}

/// A route's `retries`, ready for the request path.
struct CompiledRetries {
    let rules: RetryRules
    let perTryTimeout: TimeAmount?
    let replayBuffer: Int

    init(_ config: RetryConfig) {
        var conditions: RetryRules.Conditions = []
        for condition in config.retryOn {
            switch condition {
            case .serverError: conditions.insert(.serverError)
            case .gatewayError: conditions.insert(.gatewayError)
            case .connectFailure: conditions.insert(.connectFailure)
            case .reset: conditions.insert(.reset)
            case .retriable4xx: conditions.insert(.retriable4xx)
            case .refusedStream: conditions.insert(.refusedStream)
            case .grpcCancelled: conditions.insert(.grpcCancelled)
            case .grpcDeadlineExceeded: conditions.insert(.grpcDeadlineExceeded)
            case .grpcInternal: conditions.insert(.grpcInternal)
            case .grpcResourceExhausted: conditions.insert(.grpcResourceExhausted)
            case .grpcUnavailable: conditions.insert(.grpcUnavailable)
            }
        }
        rules = RetryRules(retries: config.attempts, conditions: conditions)
        perTryTimeout = config.perTryTimeout.map { .nanoseconds($0.nanoseconds) }
        replayBuffer = config.replayBuffer
    }
}
