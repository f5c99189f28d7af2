/// Passive health checking for the endpoints of one service: Envoy's (and so Istio's)
/// consecutive-error outlier detection, as a pure state machine.
///
/// An endpoint that answers `consecutive5xx` 5xx in a row, or `consecutiveGatewayErrors` 502,
/// 503 or 504 in a row, is ejected: the picker stops choosing it for `baseEjectionTime` times
/// the number of times it has been ejected, so a host that keeps failing stays out longer. The
/// shell calls `tick(now:)` every `interval`; ejections end there, as Envoy's do on its interval
/// timer, and the multiplier of an endpoint that stays in good standing falls by one per tick.
///
/// Endpoints are the indices `0..<endpointCount` of the service's endpoint list. A config reload
/// that changes that list starts a fresh detector: the indices no longer name the same hosts.
///
/// Success-rate and failure-percentage ejection (Envoy's interval-based statistics) are not
/// modelled; Istio does not configure them either.
public struct OutlierDetector: Sendable, Equatable {
    public enum Action: Sendable, Equatable {
        case none
        /// Stop picking `endpoint` until `until` (the shell's clock, in nanoseconds).
        case eject(endpoint: Int, until: Int64)
        /// `endpoint` may be picked again.
        case uneject(endpoint: Int)
    }

    /// Istio's `outlierDetection` fields, with Istio's defaults. Times are in nanoseconds.
    public struct Settings: Sendable, Equatable {
        /// 5xx answers in a row (502/503/504 and gateway failures included) before an ejection;
        /// `nil`, 0 or less: off.
        public var consecutive5xx: Int?
        /// 502, 503 or 504 answers (or gateway failures) in a row before an ejection; `nil`, 0 or
        /// less: off, as in Istio.
        public var consecutiveGatewayErrors: Int?
        /// How often the shell calls `tick(now:)`.
        public var interval: Int64
        public var baseEjectionTime: Int64
        /// At most this percentage of the endpoints is ejected at once (clamped to 0...100);
        /// 0 ejects nothing.
        public var maxEjectionPercent: Int
        /// No ejection lasts longer (Envoy's `max_ejection_time`, default 300 s; Istio does not
        /// expose it, so Istio's Envoys use the default). Below `baseEjectionTime` it is raised
        /// to it, the way Envoy's default is.
        public var maxEjectionTime: Int64
        /// Eject one endpoint even where `maxEjectionPercent` of the endpoints is less than one,
        /// as long as none is ejected (Envoy's `always_eject_one_host`). Envoy defaults it to
        /// false, which leaves the 10% default unable to eject anything from a service of fewer
        /// than ten endpoints; Portico's services are mostly that small, so it defaults to true.
        public var alwaysEjectOne: Bool

        public init(
            consecutive5xx: Int? = 5,
            consecutiveGatewayErrors: Int? = nil,
            interval: Int64 = 10_000_000_000,
            baseEjectionTime: Int64 = 30_000_000_000,
            maxEjectionPercent: Int = 10,
            maxEjectionTime: Int64 = 300_000_000_000,
            alwaysEjectOne: Bool = true
        ) {
            self.consecutive5xx = consecutive5xx
            self.consecutiveGatewayErrors = consecutiveGatewayErrors
            self.interval = interval
            self.baseEjectionTime = baseEjectionTime
            self.maxEjectionPercent = maxEjectionPercent
            self.maxEjectionTime = maxEjectionTime
            self.alwaysEjectOne = alwaysEjectOne
        }
    }

    public let settings: Settings
    public let endpointCount: Int

    // The settings as the rules use them: thresholds that are off are nil, and the limits are
    // inside the ranges where the arithmetic means what the documentation says.
    private let fiveXXThreshold: Int?
    private let gatewayThreshold: Int?
    private let interval: Int64
    private let baseEjectionTime: Int64
    private let maxEjectionTime: Int64
    private let maxEjectionPercent: Int

    private var consecutive5xxCounts: [Int]
    private var consecutiveGatewayCounts: [Int]
    private var ejectedUntilTimes: [Int64?]
    private var lastUnejectedAt: [Int64?]
    private var multipliers: [Int]

    /// Endpoints ejected now.
    public private(set) var ejectedCount = 0
    /// Ejections refused because `maxEjectionPercent` was reached (Envoy's
    /// `outlier_detection.ejections_overflow`).
    public private(set) var ejectionOverflowCount = 0

    public init(settings: Settings, endpointCount: Int) {
        precondition(endpointCount >= 0)
        self.settings = settings
        self.endpointCount = endpointCount
        self.fiveXXThreshold = settings.consecutive5xx.flatMap { $0 > 0 ? $0 : nil }
        self.gatewayThreshold = settings.consecutiveGatewayErrors.flatMap { $0 > 0 ? $0 : nil }
        self.interval = max(0, settings.interval)
        self.baseEjectionTime = max(1, settings.baseEjectionTime)
        self.maxEjectionTime = max(settings.maxEjectionTime, max(1, settings.baseEjectionTime))
        self.maxEjectionPercent = min(max(settings.maxEjectionPercent, 0), 100)
        self.consecutive5xxCounts = Array(repeating: 0, count: endpointCount)
        self.consecutiveGatewayCounts = Array(repeating: 0, count: endpointCount)
        self.ejectedUntilTimes = Array(repeating: nil, count: endpointCount)
        self.lastUnejectedAt = Array(repeating: nil, count: endpointCount)
        self.multipliers = Array(repeating: 0, count: endpointCount)
    }

    // MARK: Queries

    public func isEjected(_ endpoint: Int) -> Bool { ejectedUntilTimes[endpoint] != nil }

    /// When the ejection of `endpoint` ends (it ends at the first `tick` at or after this time),
    /// or nil if it is not ejected.
    public func ejectedUntil(_ endpoint: Int) -> Int64? { ejectedUntilTimes[endpoint] }

    /// Every endpoint is ejected: only possible with one endpoint or `maxEjectionPercent` 100.
    public var allEjected: Bool { endpointCount > 0 && ejectedCount == endpointCount }

    /// Whether the picker may choose `endpoint`. When every endpoint is ejected they all are
    /// available again: a load balancer in Envoy's panic mode uses every host, because sending
    /// traffic to suspect hosts beats answering 503 to everything.
    public func isAvailable(_ endpoint: Int) -> Bool {
        ejectedUntilTimes[endpoint] == nil || allEjected
    }

    /// The multiplier of `baseEjectionTime` for `endpoint`: one more at each ejection (which then
    /// lasts that many base times, up to `maxEjectionTime`), one less per `tick` in good
    /// standing, down to 0.
    public func ejectionMultiplier(_ endpoint: Int) -> Int { multipliers[endpoint] }

    // MARK: Events

    /// An answer came back from `endpoint`.
    public mutating func responseReceived(endpoint: Int, status: Int, now: Int64) -> Action {
        // The counts start over at un-ejection (as Envoy resets them there), so what an ejected
        // endpoint answers to requests already sent to it changes nothing.
        guard ejectedUntilTimes[endpoint] == nil else { return .none }
        guard status >= 500 && status <= 599 else {
            consecutive5xxCounts[endpoint] = 0
            consecutiveGatewayCounts[endpoint] = 0
            return .none
        }
        var tripped = false
        if status == 502 || status == 503 || status == 504 {
            consecutiveGatewayCounts[endpoint] += 1
            if let threshold = gatewayThreshold, consecutiveGatewayCounts[endpoint] >= threshold {
                // Reset the count that tripped even when the ejection is refused, so an endpoint
                // held in by `maxEjectionPercent` needs a fresh run of errors to try again.
                consecutiveGatewayCounts[endpoint] = 0
                tripped = true
            }
        } else {
            // Envoy counts gateway errors in a row: a 500 between two 503s breaks the run.
            consecutiveGatewayCounts[endpoint] = 0
        }
        consecutive5xxCounts[endpoint] += 1
        if let threshold = fiveXXThreshold, consecutive5xxCounts[endpoint] >= threshold {
            consecutive5xxCounts[endpoint] = 0
            tripped = true
        }
        return tripped ? eject(endpoint, now: now) : .none
    }

    /// No answer came from `endpoint`: connect failure, reset, or timeout. As in Envoy without
    /// `split_external_local_origin_errors`, it counts as a 503: a gateway error and a 5xx.
    public mutating func gatewayFailure(endpoint: Int, now: Int64) -> Action {
        responseReceived(endpoint: endpoint, status: 503, now: now)
    }

    /// The periodic sweep, every `interval`: ends the ejections whose time is over (in index
    /// order) and lowers the multiplier of endpoints in good standing.
    public mutating func tick(now: Int64) -> [Action] {
        var actions: [Action] = []
        for endpoint in 0..<endpointCount {
            if let until = ejectedUntilTimes[endpoint] {
                guard now >= until else { continue }
                ejectedUntilTimes[endpoint] = nil
                ejectedCount -= 1
                // A count left near its threshold would eject the endpoint again on very few
                // new errors, so it comes back with a clean record.
                consecutive5xxCounts[endpoint] = 0
                consecutiveGatewayCounts[endpoint] = 0
                lastUnejectedAt[endpoint] = now
                actions.append(.uneject(endpoint: endpoint))
            }
            // Envoy forgives one ejection per interval spent back in service; the tick that
            // un-ejects does not count, since the endpoint has not served an interval yet.
            if let unejectedAt = lastUnejectedAt[endpoint], multipliers[endpoint] > 0 {
                let (elapsed, overflow) = now.subtractingReportingOverflow(unejectedAt)
                if !overflow && elapsed >= interval { multipliers[endpoint] -= 1 }
            }
        }
        return actions
    }

    // MARK: Rules

    private mutating func eject(_ endpoint: Int, now: Int64) -> Action {
        guard mayEjectAnother else {
            ejectionOverflowCount += 1
            return .none
        }
        // Envoy stops growing the multiplier once it passes the cap by a base time, so a host
        // that keeps failing is not remembered for ages after the cap has stopped mattering.
        let (reach, reachOverflow) = baseEjectionTime.multipliedReportingOverflow(by: Int64(multipliers[endpoint]))
        let (limit, limitOverflow) = maxEjectionTime.addingReportingOverflow(baseEjectionTime)
        if !reachOverflow && (limitOverflow || reach < limit) {
            multipliers[endpoint] += 1
        }
        let (scaled, scaledOverflow) = baseEjectionTime.multipliedReportingOverflow(by: Int64(multipliers[endpoint]))
        let duration = scaledOverflow ? maxEjectionTime : min(scaled, maxEjectionTime)
        let (end, endOverflow) = now.addingReportingOverflow(duration)
        let until = endOverflow ? Int64.max : end
        ejectedUntilTimes[endpoint] = until
        ejectedCount += 1
        return .eject(endpoint: endpoint, until: until)
    }

    /// Envoy's rule: eject while the ejected share, this one included, stays within the percent
    /// (so never every endpoint of several below 100%), or, with `alwaysEjectOne`, when none is.
    private var mayEjectAnother: Bool {
        guard maxEjectionPercent > 0 else { return false }
        if settings.alwaysEjectOne && ejectedCount == 0 { return true }
        return (ejectedCount + 1) * 100 <= endpointCount * maxEjectionPercent
    }
}
