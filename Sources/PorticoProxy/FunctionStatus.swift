/// What the admin API shows of a function.
public struct FunctionStatus: Sendable {
    public struct Worker: Sendable {
        public var id: UInt64
        public var pid: Int?
        public var port: Int?
        public var state: String
        public var inFlight: Int
        public var ageSeconds: Double

        public init(id: UInt64, pid: Int?, port: Int?, state: String, inFlight: Int, ageSeconds: Double) {
            self.id = id
            self.pid = pid
            self.port = port
            self.state = state
            self.inFlight = inFlight
            self.ageSeconds = ageSeconds
        }
    }

    /// A `runtime: python` revision's template process.
    public struct Template: Sendable {
        public var state: String
        public var pid: Int?
        /// Failures in a row (reset by a worker forked from it).
        public var failures: Int
        /// Why it last failed: an import's whole traceback, say.
        public var lastFailure: String?

        public init(state: String, pid: Int?, failures: Int, lastFailure: String?) {
            self.state = state
            self.pid = pid
            self.failures = failures
            self.lastFailure = lastFailure
        }
    }

    public var name: String
    public var revision: String
    public var mode: String
    public var state: String
    public var queueLength: Int
    public var lastError: String?
    public var workers: [Worker]
    public var template: Template?

    public init(name: String, revision: String, mode: String, state: String, queueLength: Int, lastError: String?,
                workers: [Worker], template: Template? = nil) {
        self.template = template
        self.name = name
        self.revision = revision
        self.mode = mode
        self.state = state
        self.queueLength = queueLength
        self.lastError = lastError
        self.workers = workers
    }
}
