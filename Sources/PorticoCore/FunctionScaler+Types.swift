extension FunctionScaler {
    /// A request the shell wants served; the shell mints these, unique per scaler.
    public struct RequestID: Hashable, Sendable, CustomStringConvertible {
        public var rawValue: UInt64
        public init(_ rawValue: UInt64) { self.rawValue = rawValue }
        public var description: String { "r\(rawValue)" }
    }

    /// One worker process. The scaler mints these sequentially from 1 and never reuses one, so a
    /// late event about a worker that is gone can never be mistaken for a newer worker.
    public struct WorkerID: Hashable, Comparable, Sendable, CustomStringConvertible {
        public var rawValue: UInt64
        public init(_ rawValue: UInt64) { self.rawValue = rawValue }
        public var description: String { "w\(rawValue)" }
        public static func < (lhs: Self, rhs: Self) -> Bool { lhs.rawValue < rhs.rawValue }
    }

    /// The settings of one function revision, all durations in nanoseconds.
    public struct Configuration: Sendable {
        /// Most requests one worker serves at once; 0 means no limit.
        public var concurrency: Int
        /// Workers kept alive (started at `start(now:)`, replaced when they exit) even when idle.
        public var minWorkers: Int
        /// Most live processes at once, counting the ones still starting and the ones stopping.
        public var maxWorkers: Int
        /// Most requests waiting for a worker beyond what the starting workers (and those that
        /// may still start under `maxWorkers`) will take, `concurrency` each; the next one is
        /// rejected (`.queueFull`). With `concurrency` 0, most requests waiting at all.
        public var queueLimit: Int
        /// How long a ready worker sits without requests before it is stopped.
        public var idleTimeout: UInt64
        /// How long a starting worker has to become ready before it is killed.
        public var startupTimeout: UInt64
        /// Delay before replacing a worker that failed to start: `initial`, doubling per
        /// consecutive failure, capped at `max`.
        public var crashBackoff: (initial: UInt64, max: UInt64)

        /// Preconditions: `maxWorkers >= 1`, `0 <= minWorkers <= maxWorkers`, `concurrency >= 0`,
        /// `queueLimit >= 1` (a cold function must be able to hold its first request) and
        /// `crashBackoff.initial <= crashBackoff.max`. Validating user input with a readable
        /// error is the config loader's job; these only catch programming errors.
        public init(
            concurrency: Int = 0,
            minWorkers: Int = 0,
            maxWorkers: Int = 1,
            queueLimit: Int = 1024,
            idleTimeout: UInt64 = 60 * nanosecondsPerSecond,
            startupTimeout: UInt64 = 30 * nanosecondsPerSecond,
            crashBackoff: (initial: UInt64, max: UInt64) = (100 * nanosecondsPerMillisecond, 10 * nanosecondsPerSecond)
        ) {
            precondition(concurrency >= 0, "concurrency must be >= 0 (0 = unlimited)")
            precondition(maxWorkers >= 1, "maxWorkers must be >= 1")
            precondition(minWorkers >= 0 && minWorkers <= maxWorkers, "minWorkers must be in 0...maxWorkers")
            precondition(queueLimit >= 1, "queueLimit must be >= 1")
            precondition(crashBackoff.initial <= crashBackoff.max, "crashBackoff.initial must be <= crashBackoff.max")
            self.concurrency = concurrency
            self.minWorkers = minWorkers
            self.maxWorkers = maxWorkers
            self.queueLimit = queueLimit
            self.idleTimeout = idleTimeout
            self.startupTimeout = startupTimeout
            self.crashBackoff = crashBackoff
        }
    }

    public enum WorkerState: Sendable, Equatable {
        /// Spawned, not ready yet: counts as capacity that is on its way.
        case starting
        case ready
        /// Takes no new requests; told to stop once its in-flight requests end.
        case draining
        /// Told to stop (or killed); waiting for the process to exit.
        case stopping
    }

    /// One worker as the scaler sees it; read-only for the admin API and tests.
    public struct Worker: Sendable, Equatable {
        public let id: WorkerID
        public internal(set) var state: WorkerState
        public internal(set) var inFlight: Int
        /// When a ready worker last became idle; nil while it serves requests or has not been ready.
        public internal(set) var idleSince: UInt64?
        /// When the worker became ready; nil until it has.
        public internal(set) var readySince: UInt64?
        /// Idle checks scheduled and not fired yet, so a stale one knows whether a newer one is coming.
        var pendingIdleChecks: Int = 0

        init(id: WorkerID) {
            self.id = id
            self.state = .starting
            self.inFlight = 0
            self.idleSince = nil
            self.readySince = nil
        }
    }

    public enum RejectReason: Sendable, Equatable {
        /// Too many requests already wait (the shell answers 503 with Retry-After).
        case queueFull
        /// The revision is being drained (the shell routes the request to the new revision).
        case draining
    }

    public enum FailReason: Sendable, Equatable {
        /// The worker it waited for did not become ready in time (the shell answers 504).
        case startupTimeout
    }

    public static let nanosecondsPerMillisecond: UInt64 = 1_000_000
    public static let nanosecondsPerSecond: UInt64 = 1_000_000_000
}
