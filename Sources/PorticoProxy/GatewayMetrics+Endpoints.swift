import PorticoConfig
import Prometheus

struct EndpointGaugeKey: Hashable {
    let service: String
    let endpoint: String
}

extension GatewayMetrics {
    /// Sets `portico_upstream_endpoint_healthy` and `portico_upstream_endpoint_ejected` for every
    /// endpoint of every service in `snapshot`, and takes out those of endpoints no longer there.
    ///
    /// Read from the services' health state when metrics are scraped, not pushed at each change:
    /// an ejection ends by the clock, with no event to push from.
    func publishEndpointStates(_ snapshot: RuntimeSnapshot) {
        var current: [EndpointGaugeKey: (healthy: Bool, ejected: Bool)] = [:]
        for service in snapshot.config.services {
            let states = snapshot.serviceHealth[service.name]?.endpointStates()
            for (index, endpoint) in service.endpoints.enumerated() {
                let state = states.flatMap { index < $0.count ? $0[index] : nil }
                current[EndpointGaugeKey(service: service.name, endpoint: endpoint.description)] =
                    (state?.healthy ?? true, state?.ejectedForSeconds != nil)
            }
        }
        endpointGauges.withLockedValue { gauges in
            for (key, pair) in gauges where current[key] == nil {
                registry.unregisterGauge(pair.healthy)
                registry.unregisterGauge(pair.ejected)
                gauges[key] = nil
            }
            for (key, state) in current {
                let pair = gauges[key] ?? (endpointHealthyGauge(service: key.service, endpoint: key.endpoint),
                                           endpointEjectedGauge(service: key.service, endpoint: key.endpoint))
                gauges[key] = pair
                pair.healthy.set(to: state.healthy ? 1 : 0)
                pair.ejected.set(to: state.ejected ? 1 : 0)
            }
        }
    }
}
