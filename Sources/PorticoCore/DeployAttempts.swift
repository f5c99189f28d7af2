/// What the function registry remembers about folders that failed to deploy: a `build` that
/// failed or timed out, or a revision whose workers never became ready.
///
/// A broken folder is tried once per change of its content (its fingerprint, the folder's
/// hash). The same content is tried again only after a back-off that doubles with each failure
/// (`initialBackoff`, then twice that, up to `maxBackoff`), for failures that come from outside
/// the folder (a compiler that was missing and is installed since, a machine too loaded for the
/// build timeout). Before this, a broken function was rebuilt on every poll, every 2 s.
///
/// Pure: the registry reports each attempt's outcome with the monotonic time `now` in
/// nanoseconds and asks before each attempt.
public struct DeployAttempts: Sendable {
    public struct Failure: Sendable, Equatable {
        /// The content that failed.
        public var fingerprint: String
        /// Why, for the log, the admin API and `portico check`.
        public var reason: String
        /// Failures of this same content in a row.
        public var count: Int
        /// The same content is not tried again before this time.
        public var retryAt: UInt64
    }

    public enum Decision: Sendable, Equatable {
        /// Build and deploy this content now.
        case attempt
        /// This content failed and its back-off has not passed: keep reporting `Failure`.
        case skip(Failure)
    }

    public let initialBackoff: UInt64
    public let maxBackoff: UInt64
    public private(set) var failures: [String: Failure] = [:]

    public init(initialBackoff: UInt64 = 60 * 1_000_000_000, maxBackoff: UInt64 = 3600 * 1_000_000_000) {
        precondition(initialBackoff <= maxBackoff, "initialBackoff must be <= maxBackoff")
        self.initialBackoff = initialBackoff
        self.maxBackoff = maxBackoff
    }

    /// Whether `function`'s folder, now with content `fingerprint`, should be built and deployed.
    public func decide(_ function: String, fingerprint: String, now: UInt64) -> Decision {
        guard let failure = failures[function], failure.fingerprint == fingerprint, now < failure.retryAt else {
            return .attempt
        }
        return .skip(failure)
    }

    /// The attempt at `fingerprint` failed. Returns the failure as remembered.
    @discardableResult
    public mutating func failed(_ function: String, fingerprint: String, reason: String, now: UInt64) -> Failure {
        let count = failures[function].map { $0.fingerprint == fingerprint ? $0.count + 1 : 1 } ?? 1
        let delay = FunctionScaler.backoff(afterFailures: count, (initialBackoff, maxBackoff))
        let (end, overflow) = now.addingReportingOverflow(delay)
        let failure = Failure(fingerprint: fingerprint, reason: reason, count: count, retryAt: overflow ? .max : end)
        failures[function] = failure
        return failure
    }

    /// The function deployed (or its folder went away): nothing to hold back any more.
    public mutating func forget(_ function: String) {
        failures[function] = nil
    }
}
