import PorticoConfig

/// The admin API's `GET /services` body: every service with its endpoints, their open and idle
/// connections (summed over the event loops) and, where tracked, their health and ejection.
struct ServiceListing: Encodable {
    var services: [Service]

    struct Service: Encodable {
        var name: String
        var loadBalancer: String
        var tls: Bool
        var endpoints: [Endpoint]
    }

    struct Endpoint: Encodable {
        var address: String
        var openConnections: Int
        var idleConnections: Int
        /// Only with outlier detection.
        var ejected: Bool?
        var ejectedForSeconds: Double?
        /// Only with active health checks.
        var healthy: Bool?
    }

    init(snapshot: RuntimeSnapshot, connections: [HostPort: (open: Int, idle: Int)]) {
        services = snapshot.config.services.map { service in
            let states = snapshot.serviceHealth[service.name]?.endpointStates()
            let endpoints = service.endpoints.enumerated().map { index, endpoint in
                let counts = connections[endpoint] ?? (0, 0)
                var entry = Endpoint(address: endpoint.description, openConnections: counts.open, idleConnections: counts.idle)
                // Only what is tracked is shown: ejection with outlier detection, health with
                // active checks.
                if service.outlierDetection != nil {
                    let ejectedFor = states?[index].ejectedForSeconds
                    entry.ejected = ejectedFor != nil
                    entry.ejectedForSeconds = ejectedFor.map { ($0 * 10).rounded() / 10 }
                }
                entry.healthy = states?[index].healthy
                return entry
            }
            return Service(name: service.name, loadBalancer: service.loadBalancer.rawValue, tls: service.tls != nil,
                           endpoints: endpoints)
        }
    }
}

/// The admin API's `POST /reload` body.
struct ReloadAnswer: Encodable {
    var reloaded: Bool
    var generation: Int
    var message: String
}
