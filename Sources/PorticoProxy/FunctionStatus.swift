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
    /// The revision can serve: a worker of it has been ready (http mode), or at once (exec
    /// mode, which starts a process per request). What `portico deploy` waits for.
    public var ready: Bool
    /// A worker is being started for the revision without a request asking (its deploy's
    /// warm-up), and has not been ready yet.
    public var warming: Bool
    /// Why the revision gave up starting before any worker was ready (its starts kept failing).
    public var startFailure: String?
    /// Bytes of request bodies held for requests waiting for a worker or a process slot
    /// (bounded by `queueBodyLimit`).
    public var queueBodyBytes: Int
    public var workers: [Worker]
    public var template: Template?

    public init(name: String, revision: String, mode: String, state: String, queueLength: Int, lastError: String?,
                ready: Bool = true, warming: Bool = false, startFailure: String? = nil, queueBodyBytes: Int = 0, workers: [Worker],
                template: Template? = nil) {
        self.template = template
        self.name = name
        self.revision = revision
        self.mode = mode
        self.state = state
        self.queueLength = queueLength
        self.lastError = lastError
        self.ready = ready
        self.warming = warming
        self.startFailure = startFailure
        self.queueBodyBytes = queueBodyBytes
        self.workers = workers
    }
}
