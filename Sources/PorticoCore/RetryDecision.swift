/// Whether a failed try of a request may be tried again, and after how long: the rules of
/// Envoy's and Istio's route retry policy, as pure functions of plain values.
public struct RetryRules: Sendable, Equatable {
    /// The conditions of Envoy's `retry_on`.
    public struct Conditions: OptionSet, Sendable, Hashable {
        public let rawValue: Int
        public init(rawValue: Int) { self.rawValue = rawValue }

        /// Any 5xx answer, and no answer at all (connect failure, reset, per-try timeout).
        public static let serverError = Conditions(rawValue: 1 << 0)
        /// 502, 503 or 504 answers, and no answer at all.
        public static let gatewayError = Conditions(rawValue: 1 << 1)
        public static let connectFailure = Conditions(rawValue: 1 << 2)
        /// The connection was reset or closed, or the per-try timeout passed, before an answer.
        public static let reset = Conditions(rawValue: 1 << 3)
        /// 409 Conflict.
        public static let retriable4xx = Conditions(rawValue: 1 << 4)
        /// HTTP/2 REFUSED_STREAM from an upstream, or a stream above its GOAWAY's last stream
        /// id: the upstream never started on the request.
        public static let refusedStream = Conditions(rawValue: 1 << 5)
        // The gRPC conditions of Envoy's `x-envoy-retry-grpc-on`: the `grpc-status` of a
        // trailers-only answer.
        public static let grpcCancelled = Conditions(rawValue: 1 << 6)
        public static let grpcDeadlineExceeded = Conditions(rawValue: 1 << 7)
        public static let grpcInternal = Conditions(rawValue: 1 << 8)
        public static let grpcResourceExhausted = Conditions(rawValue: 1 << 9)
        public static let grpcUnavailable = Conditions(rawValue: 1 << 10)
    }

    /// What ended a try.
    public enum Outcome: Sendable, Equatable {
        case status(Int)
        case connectFailure
        case reset
        case perTryTimeout
        case refusedStream
        /// A gRPC answer's `grpc-status` (its HTTP status is 200).
        case grpcStatus(Int)
    }

    /// Retries after the first try (Istio's `attempts`).
    public var retries: Int
    public var conditions: Conditions
    /// Backoff before retry n (1-based): a random time up to `base * 2^(n-1)`, capped at
    /// `maxBackoff` (Envoy's full-jitter exponential backoff; defaults 25 ms and 250 ms).
    public var baseBackoffNanoseconds: Int64
    public var maxBackoffNanoseconds: Int64

    public init(retries: Int, conditions: Conditions, baseBackoffNanoseconds: Int64 = 25_000_000,
                maxBackoffNanoseconds: Int64 = 250_000_000) {
        self.retries = retries
        self.conditions = conditions
        self.baseBackoffNanoseconds = baseBackoffNanoseconds
        self.maxBackoffNanoseconds = maxBackoffNanoseconds
    }

    /// Whether `outcome` is one the conditions retry.
    public func matches(_ outcome: Outcome) -> Bool {
        switch outcome {
        case .status(let code):
            if code >= 500 && code <= 599 && conditions.contains(.serverError) { return true }
            if (code == 502 || code == 503 || code == 504) && conditions.contains(.gatewayError) { return true }
            return code == 409 && conditions.contains(.retriable4xx)
        // As in Envoy, 5xx and gateway-error also cover tries that got no answer at all.
        case .connectFailure:
            return !conditions.isDisjoint(with: [.connectFailure, .serverError, .gatewayError])
        case .reset, .perTryTimeout:
            return !conditions.isDisjoint(with: [.reset, .serverError, .gatewayError])
        case .refusedStream:
            return !conditions.isDisjoint(with: [.refusedStream, .reset, .serverError, .gatewayError])
        case .grpcStatus(let code):
            switch code {
            case 1: return conditions.contains(.grpcCancelled)
            case 4: return conditions.contains(.grpcDeadlineExceeded)
            case 8: return conditions.contains(.grpcResourceExhausted)
            case 13: return conditions.contains(.grpcInternal)
            case 14: return conditions.contains(.grpcUnavailable)
            default: return false
            }
        }
    }

    /// The wait before retry number `retry` (1-based), given a uniform draw `unit` in [0, 1).
    public func backoff(retry: Int, unit: Double) -> Int64 {
        let shift = min(max(retry - 1, 0), 30)
        let (ceiling, overflow) = baseBackoffNanoseconds.multipliedReportingOverflow(by: Int64(1) << shift)
        let capped = overflow ? maxBackoffNanoseconds : min(ceiling, maxBackoffNanoseconds)
        return Int64(Double(capped) * min(max(unit, 0), 1))
    }
}

/// A retry budget, as Linkerd's has it (from Finagle's `RetryBudget`): over the last `window`,
/// retries may be `percent` of the requests plus a floor of `minimumPerSecond` for each second of
/// the window (and `minimum` more). The floor is added, not a lower bound: at low traffic every
/// retry a route asks for happens, and the share only bites when a busy service's retries are a
/// large part of its traffic. It keeps retries from multiplying an outage.
///
/// Linkerd rather than Envoy: Envoy's floor counts retries in flight, which needs every end of
/// every try reported back; this one needs only when requests and retries start.
///
/// The window is ten slots; a slot older than the window is cleared as time moves on.
public struct RetryBudget: Sendable, Equatable {
    public let percent: Int
    /// Retries the window always allows: `minimumPerSecond` times its length in seconds, plus
    /// `minimum`.
    public let floor: Int
    private let slotNanoseconds: Int64
    private var requests: [Int]
    private var retries: [Int]
    /// The slot number (time / slot length) of the newest slot written.
    private var newestSlot: Int64

    public init(percent: Int, minimumPerSecond: Int, minimum: Int = 0, windowNanoseconds: Int64, now: Int64) {
        self.percent = percent
        // In Double: a day's window at a million a second overflows an Int64 of nanoseconds.
        let perWindow = Double(max(minimumPerSecond, 0)) * Double(max(windowNanoseconds, 0)) / 1e9
        self.floor = Int(min(perWindow, Double(Int32.max))) + max(minimum, 0)
        self.slotNanoseconds = max(1, windowNanoseconds / 10)
        self.requests = Array(repeating: 0, count: 10)
        self.retries = Array(repeating: 0, count: 10)
        self.newestSlot = now / max(1, windowNanoseconds / 10)
    }

    /// A request started (a retry is not a request).
    public mutating func recordRequest(now: Int64) {
        let slot = advance(to: now)
        requests[slot] += 1
    }

    /// Takes a retry from the budget if there is room for one.
    public mutating func takeRetry(now: Int64) -> Bool {
        let slot = advance(to: now)
        let allowed = floor + requests.reduce(0, +) * percent / 100
        guard retries.reduce(0, +) < allowed else { return false }
        retries[slot] += 1
        return true
    }

    private mutating func advance(to now: Int64) -> Int {
        let slot = now / slotNanoseconds
        if slot > newestSlot {
            let cleared = min(slot - newestSlot, 10)
            for step in 1...cleared {
                let index = Int((newestSlot + step) % 10)
                requests[index] = 0
                retries[index] = 0
            }
            newestSlot = slot
        }
        return Int(newestSlot % 10)
    }
}
