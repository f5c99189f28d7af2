/// Chooses which endpoint of a service serves the next request.
///
/// One picker lives on each event loop for each service, so its counters need no lock; the
/// spread across loops is still even because every loop's picker starts at a different offset.
public struct EndpointPicker {
    public enum Strategy: Sendable, Equatable {
        case roundRobin
        /// Power of two choices on in-flight requests, as Envoy's LEAST_REQUEST does: cheap,
        /// and avoids the herd that "always the least loaded" causes.
        case leastRequest
        case random
    }

    public let strategy: Strategy
    public let endpointCount: Int
    private var cursor: Int
    private var inFlight: [Int]

    public init(strategy: Strategy, endpointCount: Int, startingAt offset: Int = 0) {
        precondition(endpointCount > 0)
        self.strategy = strategy
        self.endpointCount = endpointCount
        self.cursor = offset % endpointCount
        self.inFlight = Array(repeating: 0, count: endpointCount)
    }

    /// The index of the endpoint for the next request.
    public mutating func pick<G: RandomNumberGenerator>(using generator: inout G) -> Int {
        if endpointCount == 1 { return 0 }
        switch strategy {
        case .roundRobin:
            let chosen = cursor
            cursor = (cursor + 1) % endpointCount
            return chosen
        case .random:
            return Int.random(in: 0..<endpointCount, using: &generator)
        case .leastRequest:
            let first = Int.random(in: 0..<endpointCount, using: &generator)
            var second = Int.random(in: 0..<(endpointCount - 1), using: &generator)
            if second >= first { second += 1 }
            return inFlight[second] < inFlight[first] ? second : first
        }
    }

    public func inFlight(at index: Int) -> Int { inFlight[index] }

    public mutating func requestStarted(at index: Int) { inFlight[index] += 1 }

    public mutating func requestFinished(at index: Int) {
        if inFlight[index] > 0 { inFlight[index] -= 1 }
    }
}
