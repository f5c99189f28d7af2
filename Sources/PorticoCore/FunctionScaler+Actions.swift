extension FunctionScaler {
    /// One thing the shell must do. Plain data: the shell owns every process, timer and socket.
    public enum Action: Sendable, Equatable {
        /// Proxy the request to this (ready) worker.
        case dispatch(RequestID, to: WorkerID)
        /// Answer at once without a worker: 503 + Retry-After for `.queueFull`, re-route for `.draining`.
        case reject(RequestID, RejectReason)
        /// A waiting request cannot be served (504 for `.startupTimeout`).
        case fail(RequestID, FailReason)
        /// Spawn a worker process; report `workerReady` once it answers its readiness probe, or
        /// `workerExited` if it dies.
        case startWorker(WorkerID)
        /// Call `startupTimeoutFired(_:now:)` after this many nanoseconds.
        case scheduleStartupTimeout(WorkerID, after: UInt64)
        /// Call `idleCheckFired(_:now:)` after this many nanoseconds.
        case scheduleIdleCheck(WorkerID, after: UInt64)
        /// Graceful stop: SIGTERM, then SIGKILL after the grace period; report `workerExited`.
        case stopWorker(WorkerID)
        /// Immediate SIGKILL (the worker never became ready); report `workerExited`.
        case killWorker(WorkerID)
        /// Immediate SIGKILL of a worker that failed while it was thought ready (see
        /// `workerFailed`); report `workerExited`.
        case replaceFailedWorker(WorkerID)
        /// Call `retryFired(now:)` after this many nanoseconds.
        case scheduleRetry(after: UInt64)
        /// These waiting requests belong to the next revision now; the shell moves them there.
        case requeueElsewhere([RequestID])
        /// Workers keep failing to start; for the log and the admin API. Nothing to perform.
        case crashLooping(consecutiveFailures: Int)
    }

    /// The actions one event produced, to be performed in order.
    ///
    /// Most events produce at most two actions (a dispatch; a start and its timeout), so the first
    /// two live inline and only the rare longer list allocates: `requestArrived` is on every
    /// request's path. Compare it with an array literal in tests: `XCTAssertEqual(a, [.dispatch(r, to: w)])`.
    public struct Actions: RandomAccessCollection, ExpressibleByArrayLiteral, Equatable, Sendable, CustomStringConvertible {
        private var first: Action?
        private var second: Action?
        private var rest: [Action] = []

        public init() {}

        public init(arrayLiteral elements: Action...) {
            for element in elements { append(element) }
        }

        public var startIndex: Int { 0 }
        public var endIndex: Int { first == nil ? 0 : second == nil ? 1 : 2 + rest.count }

        public subscript(position: Int) -> Action {
            switch position {
            case 0: return first!
            case 1: return second!
            default: return rest[position - 2]
            }
        }

        public mutating func append(_ action: Action) {
            if first == nil {
                first = action
            } else if second == nil {
                second = action
            } else {
                rest.append(action)
            }
        }

        public mutating func append(contentsOf other: Actions) {
            for action in other { append(action) }
        }

        public static func == (lhs: Actions, rhs: Actions) -> Bool {
            lhs.elementsEqual(rhs)
        }

        public var description: String { Array(self).description }
    }
}
