import Logging
import NIOConcurrencyHelpers
import NIOCore
import PorticoConfig
import PorticoCore
import Prometheus

/// Which endpoints of one service the load balancer may pick: outlier detection (passive,
/// from the answers requests get) and active health checks, shared by every event loop.
///
/// One per service, not one per loop, so that five failures in a row are five failures of the
/// endpoint, whichever loops saw them (Envoy's detector is per cluster too). Requests read the
/// availability list under a lock held for a pointer copy, and only on services that configure
/// `outlierDetection` or `healthCheck`.
final class ServiceHealth: Sendable {
    let service: ServiceConfig
    let tls: UpstreamTLS?
    private let ejectionCounter: Counter?
    private let logger: Logger

    private struct State {
        var detector: OutlierDetector?
        var checks: HealthCheckState?
        /// Endpoints the picker may choose; nil: all of them (nothing ejected or unhealthy).
        var available: [Bool]?
        var tasks: [RepeatedTask] = []
    }

    private let state: NIOLockedValueBox<State>

    init(service: ServiceConfig, tls: UpstreamTLS?, metrics: GatewayMetrics?, logger: Logger = Logger(label: "portico.health")) {
        self.service = service
        self.tls = tls
        self.logger = logger
        self.ejectionCounter = metrics?.outlierEjectionCounter(service: service.name)
        let count = service.endpoints.count
        var state = State()
        if let outlier = service.outlierDetection {
            state.detector = OutlierDetector(settings: .init(
                consecutive5xx: outlier.consecutive5xx, consecutiveGatewayErrors: outlier.consecutiveGatewayErrors,
                interval: outlier.interval.nanoseconds, baseEjectionTime: outlier.baseEjectionTime.nanoseconds,
                maxEjectionPercent: outlier.maxEjectionPercent), endpointCount: count)
        }
        if let check = service.healthCheck {
            state.checks = HealthCheckState(endpointCount: count, healthyThreshold: check.healthyThreshold,
                                            unhealthyThreshold: check.unhealthyThreshold)
        }
        self.state = NIOLockedValueBox(state)
    }

    /// Whether `other` has the endpoints and settings this one watches (so it can be kept).
    func watchesTheSame(as other: ServiceConfig) -> Bool {
        service.endpoints == other.endpoints && service.outlierDetection == other.outlierDetection
            && service.healthCheck == other.healthCheck
    }

    /// The endpoints the picker may choose now; nil when every endpoint may be chosen.
    var availability: [Bool]? { state.withLockedValue { $0.available } }

    /// Starts the detector's interval and the health checks, on `eventLoop` (not a proxy loop).
    func start(on eventLoop: EventLoop) {
        var tasks: [RepeatedTask] = []
        if let outlier = service.outlierDetection {
            let interval = TimeAmount.nanoseconds(outlier.interval.nanoseconds)
            tasks.append(eventLoop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { [weak self] task in
                guard let self else { return task.cancel() }
                self.tick()
            })
        }
        if let check = service.healthCheck {
            let interval = TimeAmount.nanoseconds(check.interval.nanoseconds)
            tasks.append(eventLoop.scheduleRepeatedTask(initialDelay: .zero, delay: interval) { [weak self] task in
                guard let self else { return task.cancel() }
                self.runChecks(check, on: eventLoop)
            })
        }
        state.withLockedValue { $0.tasks = tasks }
    }

    func stop() {
        for task in state.withLockedValue({ $0.tasks }) { task.cancel() }
    }

    // MARK: Outlier detection

    /// An answer from `endpoint` (for outlier detection).
    func recordResponse(endpoint: Int, status: Int) {
        guard service.outlierDetection != nil else { return }
        let now = Int64(truncatingIfNeeded: NIODeadline.now().uptimeNanoseconds)
        let action = state.withLockedValue { state -> OutlierDetector.Action in
            guard endpoint < service.endpoints.count, let action = state.detector?.responseReceived(endpoint: endpoint, status: status, now: now)
            else { return .none }
            if case .eject = action { state.available = Self.available(state) }
            return action
        }
        report(action)
    }

    /// No answer from `endpoint`: connect failure, reset, or timeout.
    func recordFailure(endpoint: Int) {
        guard service.outlierDetection != nil else { return }
        let now = Int64(truncatingIfNeeded: NIODeadline.now().uptimeNanoseconds)
        let action = state.withLockedValue { state -> OutlierDetector.Action in
            guard endpoint < service.endpoints.count, let action = state.detector?.gatewayFailure(endpoint: endpoint, now: now)
            else { return .none }
            if case .eject = action { state.available = Self.available(state) }
            return action
        }
        report(action)
    }

    private func tick() {
        let now = Int64(truncatingIfNeeded: NIODeadline.now().uptimeNanoseconds)
        let actions = state.withLockedValue { state -> [OutlierDetector.Action] in
            let actions = state.detector?.tick(now: now) ?? []
            if !actions.isEmpty { state.available = Self.available(state) }
            return actions
        }
        actions.forEach(report)
    }

    private func report(_ action: OutlierDetector.Action) {
        switch action {
        case .none:
            break
        case .eject(let endpoint, let until):
            ejectionCounter?.increment()
            let seconds = Double(until - Int64(truncatingIfNeeded: NIODeadline.now().uptimeNanoseconds)) / 1e9
            logger.warning("endpoint ejected", metadata: [
                "service": .string(service.name), "endpoint": .string(service.endpoints[endpoint].description),
                "seconds": .stringConvertible((seconds * 10).rounded() / 10),
            ])
        case .uneject(let endpoint):
            logger.info("endpoint back in the load balancer", metadata: [
                "service": .string(service.name), "endpoint": .string(service.endpoints[endpoint].description),
            ])
        }
    }

    // MARK: Active health checks

    private func runChecks(_ check: HealthCheckConfig, on eventLoop: EventLoop) {
        for (index, endpoint) in service.endpoints.enumerated() {
            OneShotHTTPClient.get(
                host: endpoint.host, port: endpoint.port, path: check.path, hostHeader: endpoint.description,
                tls: tls?.context, serverName: tls?.serverHostname(for: endpoint), peerCheck: tls,
                http2: service.protocol == .h2c,
                timeout: .nanoseconds(check.timeout.nanoseconds), maxBytes: 64 * 1024, on: eventLoop
            ).whenComplete { [weak self] result in
                guard let self else { return }
                let transition = self.state.withLockedValue { state -> HealthCheckState.Transition? in
                    let transition: HealthCheckState.Transition?
                    switch result {
                    case .success(let response) where (200..<300).contains(response.status):
                        transition = state.checks?.checkSucceeded(endpoint: index)
                    case .success:
                        transition = state.checks?.checkFailed(endpoint: index, kind: .unexpectedStatus)
                    case .failure:
                        transition = state.checks?.checkFailed(endpoint: index, kind: .network)
                    }
                    if transition != nil { state.available = Self.available(state) }
                    return transition
                }
                switch transition {
                case .becameUnhealthy(let endpoint)?:
                    self.logger.warning("endpoint failed its health checks", metadata: [
                        "service": .string(self.service.name), "endpoint": .string(self.service.endpoints[endpoint].description),
                    ])
                case .becameHealthy(let endpoint)?:
                    self.logger.info("endpoint passed its health checks", metadata: [
                        "service": .string(self.service.name), "endpoint": .string(self.service.endpoints[endpoint].description),
                    ])
                case nil:
                    break
                }
            }
        }
    }

    // MARK: Reading

    /// Healthy and not ejected; when no endpoint is both, every endpoint is (Envoy's panic
    /// mode: sending traffic to suspect endpoints beats answering 503 to all of it).
    private static func available(_ state: State) -> [Bool]? {
        let count = state.detector?.endpointCount ?? state.checks?.endpointCount ?? 0
        let list = (0..<count).map { index in
            (state.detector.map { !$0.isEjected(index) } ?? true) && (state.checks?.isHealthy(index) ?? true)
        }
        return list.contains(false) && list.contains(true) ? list : nil
    }

    struct EndpointState {
        var ejectedForSeconds: Double?
        var healthy: Bool?
    }

    /// Per endpoint, for the admin API.
    func endpointStates() -> [EndpointState] {
        let now = Int64(truncatingIfNeeded: NIODeadline.now().uptimeNanoseconds)
        return state.withLockedValue { state in
            (0..<service.endpoints.count).map { index in
                var entry = EndpointState()
                if let until = state.detector?.ejectedUntil(index) {
                    entry.ejectedForSeconds = max(0, Double(until - now) / 1e9)
                }
                entry.healthy = state.checks?.isHealthy(index)
                return entry
            }
        }
    }
}
