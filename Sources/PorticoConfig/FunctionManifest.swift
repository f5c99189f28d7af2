/// A function's `function.yaml`, validated: how to run it, where it is routed, how it scales.
///
/// A function is a folder under the functions directory; its name is the folder's name.
public struct FunctionManifest: Sendable, Equatable {
    public enum Mode: String, Sendable, Equatable {
        /// Long-running workers that listen on `127.0.0.1:$PORT` (Knative's runtime contract).
        case http
        /// One process per request: the body on stdin, stdout is the response body (CGI-like).
        case exec
        /// Long-running workers that speak the AWS Lambda Runtime API to Portico (on
        /// `AWS_LAMBDA_RUNTIME_API`), one invocation at a time; each HTTP request is an API
        /// Gateway HTTP API event (payload format 2.0).
        case lambda
    }

    /// Set when Portico runs the function's code itself, from a `handler`, instead of a
    /// `command` of the function's own.
    public enum Runtime: String, Sendable, Equatable {
        /// A WSGI application, imported once by Portico's launcher (see `usesTemplate`).
        case python
    }

    public var name: String
    /// The function's folder; commands run there.
    public var directory: String
    /// The worker command (http) or the per-request command (exec); run in `directory`.
    public var command: [String]
    /// Run once per revision, in `directory`, before the first worker starts (compile a
    /// native worker, say). A failing build keeps the previous revision serving.
    public var build: [String]?
    /// A build still running after this is stopped (SIGTERM, then SIGKILL) and counts as failed.
    public var buildTimeout: ConfigDuration
    public var mode: Mode
    public var runtime: Runtime?
    /// With a `runtime`: the handler as `module:attribute`, which Portico's launcher runs. In
    /// lambda mode without one: the runtime's `_HANDLER` (such as `main.handler`).
    public var handler: String?
    /// With a `runtime`: start one template process per revision that imports the handler, and
    /// fork each worker from it, so a cold start skips the interpreter's start and the imports.
    public var usesTemplate = true
    /// With a template: keep it while no worker runs (a cold start then only forks). False
    /// stops it with the last worker, so an idle function costs no process at all.
    public var idleTemplate = true
    /// What an http-mode worker speaks on its port: HTTP/1.1, or HTTP/2 with prior knowledge
    /// (a gRPC server).
    public var `protocol`: UpstreamProtocol = .http1
    /// Default: one route, prefix `/function/<name>/`, rewritten to `/`.
    public var routes: [FunctionRoute]
    /// Extra environment for every worker, in file order.
    public var env: [EnvironmentVariable]
    /// Requests in flight per worker; 0 means unlimited (and so never a second worker for load).
    public var concurrency: Int
    /// What the scaler gives each worker: a Lambda runtime asks for one invocation at a time
    /// (Lambda's concurrency), whatever `concurrency` says.
    public var workerConcurrency: Int { mode == .lambda ? 1 : concurrency }
    /// The default `concurrency`: a worker takes this many requests at once before the next
    /// worker starts. Knative's `containerConcurrency` defaults to 0 (unlimited) but its
    /// autoscaler still targets 100 per pod; a Portico worker is one process, often a Python
    /// program, and Python's `http.server` listens with a backlog of 5: more connections at
    /// once than that are not accepted in time. 4 stays under it (each request in flight
    /// holds one connection to its worker).
    public static let defaultConcurrency = 4
    /// The default `buildTimeout`: long enough for a Swift package with dependencies on two cores.
    public static let defaultBuildTimeout = ConfigDuration.seconds(600)
    /// Workers kept even when idle; 0 scales to zero.
    public var minWorkers: Int
    public var maxWorkers: Int
    /// A worker idle this long is stopped (never below `minWorkers`).
    public var idleTimeout: ConfigDuration
    /// A worker not ready by then is killed; requests waiting only on it get 504.
    public var startupTimeout: ConfigDuration
    /// Time for the worker's response head; past it: 504.
    public var requestTimeout: ConfigDuration
    /// Requests waiting for a worker beyond this get 503 with `Retry-After`.
    public var queueLimit: Int
    /// Bytes of request bodies the gateway may hold, across the function's requests that wait
    /// for a worker (http mode) or for a process slot (exec mode); a request whose body would
    /// go over gets 503 with `Retry-After`, and nothing more of it is buffered.
    public var queueBodyLimit: Int = FunctionManifest.defaultQueueBodyLimit
    /// The default `queueBodyLimit`. A request that waits for a worker is not read beyond what
    /// came with its head (at most one read burst, about 1 MiB over HTTP/1.1, one 64 KiB window
    /// over HTTP/2), so 16 MiB lets the default 100 waiting requests each bring a typical
    /// upload's first part, while a burst of large uploads to a cold function cannot hold more.
    public static let defaultQueueBodyLimit = 16 << 20
    /// The smallest `queueBodyLimit`: less would refuse a cold request whose head and first
    /// body bytes arrive together, as most small POSTs do.
    public static let minimumQueueBodyLimit = 1024
    /// After SIGTERM, how long a worker may take to exit before SIGKILL.
    public var gracePeriod: ConfigDuration
    /// How long a redeploy, undeploy or shutdown lets a draining worker finish its requests in
    /// flight (a WebSocket, a server-sent event stream) before it is stopped anyway.
    public var maxStreamDuration = ConfigDuration.seconds(3600)
    public var limits: FunctionLimits
    /// When set, a worker is ready once `GET path` answers 2xx; otherwise once its port accepts.
    public var readinessPath: String?
    /// A worker that fails this way is taken out and replaced (see `FunctionInstance`).
    public var outlierDetection: OutlierDetectionConfig?

    public init(
        name: String, directory: String, command: [String], build: [String]? = nil, mode: Mode = .http,
        routes: [FunctionRoute]? = nil, env: [EnvironmentVariable] = [], concurrency: Int = FunctionManifest.defaultConcurrency,
        minWorkers: Int = 0, maxWorkers: Int = 8, idleTimeout: ConfigDuration = .seconds(30),
        startupTimeout: ConfigDuration = .seconds(10), requestTimeout: ConfigDuration = .seconds(60),
        queueLimit: Int = 100, gracePeriod: ConfigDuration = .seconds(5), limits: FunctionLimits = FunctionLimits(),
        readinessPath: String? = nil
    ) {
        self.name = name
        self.directory = directory
        self.command = command
        self.build = build
        self.buildTimeout = Self.defaultBuildTimeout
        self.mode = mode
        self.routes = routes ?? [FunctionRoute.default(for: name)]
        self.env = env
        self.concurrency = concurrency
        self.minWorkers = minWorkers
        self.maxWorkers = maxWorkers
        self.idleTimeout = idleTimeout
        self.startupTimeout = startupTimeout
        self.requestTimeout = requestTimeout
        self.queueLimit = queueLimit
        self.gracePeriod = gracePeriod
        self.limits = limits
        self.readinessPath = readinessPath
    }
}

public struct EnvironmentVariable: Sendable, Equatable {
    public var name: String
    public var value: String

    public init(name: String, value: String) {
        self.name = name
        self.value = value
    }
}

/// One route to a function: a match, and an optional prefix rewrite.
public struct FunctionRoute: Sendable, Equatable {
    public var match: RouteMatch
    public var rewrite: RewriteConfig?

    public init(match: RouteMatch, rewrite: RewriteConfig? = nil) {
        self.match = match
        self.rewrite = rewrite
    }

    public static func `default`(for name: String) -> FunctionRoute {
        FunctionRoute(match: RouteMatch(path: .prefix("/function/\(name)/")), rewrite: RewriteConfig(prefix: "/"))
    }
}

/// Resource limits applied to each worker process (setrlimit in the child).
public struct FunctionLimits: Sendable, Equatable {
    /// Address-space limit in bytes (RLIMIT_AS).
    public var memory: Int?
    /// Open file descriptors (RLIMIT_NOFILE).
    public var openFiles: Int?

    public init(memory: Int? = nil, openFiles: Int? = nil) {
        self.memory = memory
        self.openFiles = openFiles
    }
}

extension FunctionManifest {
    /// The function's routes as gateway routes, numbered from `index`. They are matched after
    /// the gateway's own routes: dropping a folder into the functions folder must not be able
    /// to take over a path the gateway config already routes.
    public func routeConfigs(startingAt index: Int) -> [RouteConfig] {
        routes.enumerated().map { position, route in
            RouteConfig(
                index: index + position,
                name: position == 0 ? "function-\(name)" : "function-\(name)-\(position)",
                match: route.match, action: .function(name), timeout: requestTimeout, rewrite: route.rewrite,
                location: SourceLocation(file: directory + "/function.yaml", line: 1, column: 1))
        }
    }
}

extension Sequence where Element == FunctionManifest {
    /// Every function's routes, in name order, numbered after `count` gateway routes.
    public func routeConfigs(after count: Int) -> [RouteConfig] {
        var routes: [RouteConfig] = []
        for manifest in sorted(by: { $0.name < $1.name }) {
            routes += manifest.routeConfigs(startingAt: count + routes.count)
        }
        return routes
    }
}
