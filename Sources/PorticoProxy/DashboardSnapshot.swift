import PorticoConfig
import PorticoCore

/// What the dashboard shows, once a second: the topology (listeners, routes and their
/// backends), each route's traffic, the services' endpoints and the functions' workers.
struct DashboardSnapshot: Encodable {
    struct Listener: Encodable {
        var name: String
        var address: String
        /// `http`, `https` or `tcp`.
        var kind: String
    }

    struct Backend: Encodable {
        /// `service`, `function` or `local` (the route answers itself: a direct response or a redirect).
        var kind: String
        var name: String
        var weight: Int?
    }

    struct Route: Encodable {
        var name: String
        var backends: [Backend]
        var requestsPerSecond: Double
        /// The share of 5xx answers over the last interval (0...1).
        var errorRatio: Double
        var p50Ms: Double?
        var p99Ms: Double?
        /// Requests since the gateway started.
        var requestsTotal: Int
    }

    struct Endpoint: Encodable {
        var address: String
        /// Nil without active health checks.
        var healthy: Bool?
        /// Nil without outlier detection.
        var ejected: Bool?
        var openConnections: Int
        var idleConnections: Int
    }

    struct Service: Encodable {
        var name: String
        var endpoints: [Endpoint]
    }

    struct Worker: Encodable {
        var id: UInt64
        var pid: Int?
        var state: String
        var inFlight: Int
    }

    struct Function: Encodable {
        var name: String
        var revision: String?
        var mode: String?
        var state: String
        var queueLength: Int
        var workers: [Worker]
        /// Workers by state (`ready`, `busy`, `starting`, ...), for the scaling view.
        var workersByState: [String: Int]
        var lastError: String?
    }

    var generation: Int
    var timeUnixMs: Int
    var intervalSeconds: Double
    var listeners: [Listener]
    var routes: [Route]
    var services: [Service]
    var functions: [Function]
    var taps: Int
}

extension DashboardSnapshot {
    /// Builds the snapshot from what the admin API already reads: the config snapshot, the
    /// loops' pool statistics, the functions' statuses and the Prometheus series.
    init(snapshot: RuntimeSnapshot, poolStatistics: [HostPort: (open: Int, idle: Int)],
         functionStatuses: [String: FunctionStatus], functionFailures: [String: String],
         traffic: RouteTraffic, rates: [String: RouteTraffic.Rate], intervalSeconds: Double,
         timeUnixMs: Int, taps: Int) {
        generation = snapshot.generation
        self.timeUnixMs = timeUnixMs
        self.intervalSeconds = intervalSeconds
        self.taps = taps
        let config = snapshot.config
        listeners = config.listeners.map { listener in
            Listener(name: listener.name, address: listener.address.description, kind: listener.tls == nil ? "http" : "https")
        } + config.tcp.map { Listener(name: $0.name, address: $0.address.description, kind: "tcp") }
        routes = snapshot.routes.map { route in
            let backends: [Backend]
            switch route.action {
            case .service(let name): backends = [Backend(kind: "service", name: name)]
            case .function(let name): backends = [Backend(kind: "function", name: name)]
            case .split(let sides):
                backends = sides.map { side in
                    switch side.backend {
                    case .service(let name): return Backend(kind: "service", name: name, weight: side.weight)
                    case .function(let name): return Backend(kind: "function", name: name, weight: side.weight)
                    }
                }
            case .directResponse: backends = [Backend(kind: "local", name: "direct response")]
            case .redirect: backends = [Backend(kind: "local", name: "redirect")]
            }
            let rate = rates[route.name]
            return Route(
                name: route.name, backends: backends, requestsPerSecond: rate?.requestsPerSecond ?? 0,
                errorRatio: rate?.errorRatio ?? 0, p50Ms: rate?.p50Seconds.map { $0 * 1000 },
                p99Ms: rate?.p99Seconds.map { $0 * 1000 }, requestsTotal: Int(traffic.routes[route.name]?.requests ?? 0))
        }
        services = config.services.map { service in
            let states = snapshot.serviceHealth[service.name]?.endpointStates()
            return Service(name: service.name, endpoints: service.endpoints.enumerated().map { index, endpoint in
                let counts = poolStatistics[endpoint] ?? (0, 0)
                // Only what is tracked is shown, as in `GET /services`.
                let ejected = service.outlierDetection != nil ? (states?[index].ejectedForSeconds != nil) : nil
                return Endpoint(address: endpoint.description, healthy: states?[index].healthy, ejected: ejected,
                                openConnections: counts.open, idleConnections: counts.idle)
            })
        }
        let names = Set(functionStatuses.keys).union(functionFailures.keys).sorted()
        functions = names.map { name in
            guard let status = functionStatuses[name] else {
                return Function(name: name, state: "failed", queueLength: 0, workers: [], workersByState: [:],
                                lastError: functionFailures[name])
            }
            var byState: [String: Int] = [:]
            for worker in status.workers { byState[worker.state, default: 0] += 1 }
            return Function(
                name: name, revision: status.revision, mode: status.mode, state: status.state, queueLength: status.queueLength,
                workers: status.workers.map { Worker(id: $0.id, pid: $0.pid, state: $0.state, inFlight: $0.inFlight) },
                workersByState: byState, lastError: functionFailures[name] ?? status.lastError)
        }
    }
}
