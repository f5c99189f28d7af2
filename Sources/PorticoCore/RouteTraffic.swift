/// Per-route request totals read from the gateway's Prometheus exposition
/// (`portico_requests_total` and `portico_request_duration_seconds`), and what changed between
/// two readings: the dashboard's rate, error rate and latency percentiles.
///
/// Taken from the counters and histograms the request path already keeps, so the dashboard
/// adds nothing per request; the text is read once a second, and only while a page is open.
public struct RouteTraffic: Sendable, Equatable {
    public struct Route: Sendable, Equatable {
        public var requests = 0.0
        /// Answers with a 5xx status.
        public var errors = 0.0
        /// Cumulative counts by upper bound (seconds), in increasing order, without `+Inf`.
        public var buckets: [(le: Double, count: Double)] = []

        public init() {}

        public static func == (lhs: Route, rhs: Route) -> Bool {
            lhs.requests == rhs.requests && lhs.errors == rhs.errors
                && lhs.buckets.map(\.le) == rhs.buckets.map(\.le) && lhs.buckets.map(\.count) == rhs.buckets.map(\.count)
        }
    }

    public var routes: [String: Route] = [:]

    public init() {}

    /// Reads the series it knows from Prometheus text; anything else is skipped.
    public init(exposition bytes: some Sequence<UInt8>) {
        let text = String(decoding: Array(bytes), as: UTF8.self)
        for line in text.split(separator: "\n") where line.first != "#" {
            if line.hasPrefix("portico_requests_total{") {
                guard let sample = Self.sample(line), let route = sample.labels["route"], let code = sample.labels["code"] else { continue }
                routes[route, default: Route()].requests += sample.value
                if code.first == "5" { routes[route, default: Route()].errors += sample.value }
            } else if line.hasPrefix("portico_request_duration_seconds_bucket{") {
                guard let sample = Self.sample(line), let route = sample.labels["route"], let le = sample.labels["le"],
                      let bound = Double(le), bound.isFinite else { continue }
                routes[route, default: Route()].buckets.append((bound, sample.value))
            }
        }
        for name in routes.keys { routes[name]!.buckets.sort { $0.le < $1.le } }
    }

    /// The labels and value of one sample line: `name{a="x",b="y"} 12`.
    static func sample(_ line: Substring) -> (labels: [String: String], value: Double)? {
        guard let open = line.firstIndex(of: "{") else { return nil }
        var labels: [String: String] = [:]
        var index = line.index(after: open)
        while index < line.endIndex, line[index] != "}" {
            guard let equals = line[index...].firstIndex(of: "=") else { return nil }
            let name = String(line[index..<equals])
            var cursor = line.index(equals, offsetBy: 2, limitedBy: line.endIndex) ?? line.endIndex
            var value = ""
            while cursor < line.endIndex, line[cursor] != "\"" {
                if line[cursor] == "\\", line.index(after: cursor) < line.endIndex {
                    cursor = line.index(after: cursor)
                    value.append(line[cursor] == "n" ? "\n" : line[cursor])
                } else {
                    value.append(line[cursor])
                }
                cursor = line.index(after: cursor)
            }
            guard cursor < line.endIndex else { return nil }
            labels[name] = value
            index = line.index(after: cursor)
            if index < line.endIndex, line[index] == "," { index = line.index(after: index) }
        }
        guard index < line.endIndex else { return nil }
        let rest = line[line.index(after: index)...].split(separator: " ")
        guard let first = rest.first, let value = Double(first) else { return nil }
        return (labels, value)
    }

    /// One route's traffic over a window.
    public struct Rate: Sendable, Equatable {
        public var requestsPerSecond: Double
        /// The share of answers with a 5xx status (0...1); 0 with no requests.
        public var errorRatio: Double
        /// Nil with no requests in the window.
        public var p50Seconds: Double?
        public var p99Seconds: Double?
    }

    /// What changed from `previous` to this reading, `seconds` apart. A route that is new
    /// counts from zero; a counter that went down (it cannot, but a restart could) counts as new.
    public func rates(since previous: RouteTraffic, seconds: Double) -> [String: Rate] {
        var rates: [String: Rate] = [:]
        for (name, now) in routes {
            let before = previous.routes[name] ?? Route()
            let reset = now.requests < before.requests
            let base = reset ? Route() : before
            let requests = now.requests - base.requests
            let errors = now.errors - base.errors
            var deltas: [(le: Double, count: Double)] = []
            for bucket in now.buckets {
                let old = base.buckets.first { $0.le == bucket.le }?.count ?? 0
                deltas.append((bucket.le, bucket.count - old))
            }
            rates[name] = Rate(
                requestsPerSecond: seconds > 0 ? requests / seconds : 0,
                errorRatio: requests > 0 ? errors / requests : 0,
                p50Seconds: Self.quantile(0.5, deltas, total: requests),
                p99Seconds: Self.quantile(0.99, deltas, total: requests))
        }
        return rates
    }

    /// Prometheus's `histogram_quantile`: the bucket the rank falls in, linear inside it. A
    /// rank past the last finite bound is that bound (the `+Inf` bucket has no upper end).
    static func quantile(_ q: Double, _ buckets: [(le: Double, count: Double)], total: Double) -> Double? {
        guard total > 0 else { return nil }
        let rank = q * total
        var lowerBound = 0.0
        var lowerCount = 0.0
        for bucket in buckets {
            if bucket.count >= rank {
                let inBucket = bucket.count - lowerCount
                guard inBucket > 0 else { return bucket.le }
                return lowerBound + (bucket.le - lowerBound) * (rank - lowerCount) / inBucket
            }
            lowerBound = bucket.le
            lowerCount = bucket.count
        }
        return buckets.last?.le
    }
}
