/// Active health checking of the endpoints of one service: Envoy's thresholds, as a pure state
/// machine. The shell runs the checks and reports each result; this decides when an endpoint
/// changes state.
///
/// Endpoints start healthy, so the gateway serves as soon as it starts. Envoy starts them
/// unhealthy and trusts the first successful check; starting healthy costs at most
/// `unhealthyThreshold` checks of traffic to an endpoint that was down from the start, which
/// outlier detection and retries cover meanwhile. A reload that changes the endpoint list
/// starts a fresh state, since the indices no longer name the same hosts.
public struct HealthCheckState: Sendable, Equatable {
    public enum Transition: Sendable, Equatable {
        case becameHealthy(Int)
        case becameUnhealthy(Int)
    }

    /// Why a check failed, which decides whether one failure is enough.
    public enum FailureKind: Sendable, Equatable {
        /// No answer (connect failure, reset, timeout), or a status the check may retry: counts
        /// toward `unhealthyThreshold`, since a network blip proves little.
        case network
        /// An answer with a status the check does not expect: the endpoint said it is not well,
        /// so, as in Envoy, it is unhealthy at once.
        case unexpectedStatus
    }

    public let endpointCount: Int
    /// Successful checks in a row that make an unhealthy endpoint healthy (at least 1).
    public let healthyThreshold: Int
    /// Failed checks in a row that make a healthy endpoint unhealthy (at least 1).
    public let unhealthyThreshold: Int

    private var healthy: [Bool]
    /// Successes in a row while unhealthy, failures in a row while healthy.
    private var streak: [Int]

    public private(set) var healthyCount: Int

    public init(endpointCount: Int, healthyThreshold: Int, unhealthyThreshold: Int) {
        precondition(endpointCount >= 0)
        self.endpointCount = endpointCount
        self.healthyThreshold = max(1, healthyThreshold)
        self.unhealthyThreshold = max(1, unhealthyThreshold)
        self.healthy = Array(repeating: true, count: endpointCount)
        self.streak = Array(repeating: 0, count: endpointCount)
        self.healthyCount = endpointCount
    }

    public func isHealthy(_ endpoint: Int) -> Bool { healthy[endpoint] }

    public mutating func checkSucceeded(endpoint: Int) -> Transition? {
        if healthy[endpoint] {
            // A success breaks a run of failures.
            streak[endpoint] = 0
            return nil
        }
        streak[endpoint] += 1
        guard streak[endpoint] >= healthyThreshold else { return nil }
        healthy[endpoint] = true
        streak[endpoint] = 0
        healthyCount += 1
        return .becameHealthy(endpoint)
    }

    public mutating func checkFailed(endpoint: Int, kind: FailureKind = .network) -> Transition? {
        if !healthy[endpoint] {
            // A failure breaks a run of successes.
            streak[endpoint] = 0
            return nil
        }
        streak[endpoint] += 1
        guard kind == .unexpectedStatus || streak[endpoint] >= unhealthyThreshold else { return nil }
        healthy[endpoint] = false
        streak[endpoint] = 0
        healthyCount -= 1
        return .becameUnhealthy(endpoint)
    }
}
