import PorticoConfig
import PorticoCore

/// One event loop's load-balancer state for `tcp:` listeners: per service, the endpoint picker
/// and the connections open to each endpoint (for least_request and for the service's
/// `circuitBreaker.maxConnections`, this loop's share, as the HTTP pools count it).
///
/// Touched only on its loop (it hangs off `LoopContext`), so it takes no lock.
final class TCPLoopState {
    /// A service's endpoints as one reload gave them: a reload that changes them starts a new
    /// entry, and connections to the old endpoints count down in the entry they counted up in.
    final class ServiceEntry {
        let endpoints: [HostPort]
        let strategy: EndpointPicker.Strategy
        var picker: EndpointPicker
        var open: [Int]

        init(service: ServiceConfig, loopIndex: Int) {
            endpoints = service.endpoints
            strategy = service.loadBalancer.strategy
            picker = EndpointPicker(strategy: strategy, endpointCount: endpoints.count, startingAt: loopIndex)
            open = Array(repeating: 0, count: endpoints.count)
        }

        func opened(_ index: Int) {
            picker.requestStarted(at: index)
            open[index] += 1
        }

        func closed(_ index: Int) {
            picker.requestFinished(at: index)
            if open[index] > 0 { open[index] -= 1 }
        }
    }

    private let loopIndex: Int
    private var entries: [String: ServiceEntry] = [:]
    /// This loop's open tcp connections, for closing them when the drain time is over.
    private var sessions: [ObjectIdentifier: TCPProxySession] = [:]

    init(loopIndex: Int) {
        self.loopIndex = loopIndex
    }

    func entry(for service: ServiceConfig) -> ServiceEntry {
        if let entry = entries[service.name], entry.endpoints == service.endpoints,
           entry.strategy == service.loadBalancer.strategy {
            return entry
        }
        let entry = ServiceEntry(service: service, loopIndex: loopIndex)
        entries[service.name] = entry
        return entry
    }

    func opened(_ session: TCPProxySession) {
        sessions[ObjectIdentifier(session)] = session
    }

    func finished(_ session: TCPProxySession) {
        sessions[ObjectIdentifier(session)] = nil
    }

    /// Closes every open connection of this loop (at shutdown, once the drain time is over).
    func closeAll() {
        for session in Array(sessions.values) { session.shutDown() }
    }

    /// An endpoint not yet `tried` and under the connection limit, preferring one that outlier
    /// detection and health checks leave `available`; the strategy picks among them. nil: no
    /// endpoint is left.
    static func pick(in entry: ServiceEntry, limit: Int?, available: [Bool]?, tried: [Bool],
                     random: inout FastRandom) -> Int? {
        let count = entry.endpoints.count
        func free(_ index: Int) -> Bool { !tried[index] && (limit.map { entry.open[index] < $0 } ?? true) }
        func healthy(_ index: Int) -> Bool { available.map { $0[index] } ?? true }
        // A few picks so the strategy decides among the endpoints that may take the connection;
        // then the first such endpoint in order, and last an unhealthy one (Envoy's panic mode:
        // a suspect endpoint beats refusing the connection).
        for _ in 0..<(2 * count) {
            let index = entry.picker.pick(using: &random)
            if free(index) && healthy(index) { return index }
        }
        return (0..<count).first { free($0) && healthy($0) } ?? (0..<count).first(where: free)
    }
}
