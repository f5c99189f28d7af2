import PorticoAuth

/// What the gateway would do with one request, step by step, without doing it: the answer of
/// `portico explain` and admin `POST /explain` (`RequestExplainer` makes it).
///
/// Encodable as it is for `--json` and the admin API; `renderText()` is the human form. Every
/// part after the one that stops the request is still filled in where it can be (the layers a
/// rejection skips say `reached: false`), so one run shows the whole path.
public struct Explanation: Codable, Sendable {
    public var request: Request
    /// The path routes match on (`PathNormalizer`); nil when the edge refused the target.
    public var normalizedPath: String?
    public var query: String?
    /// The edge checks, in order, up to the first that refuses.
    public var edge: [EdgeStep]
    /// Every route in match order; empty when the edge refused the request.
    public var routes: [RouteStep]
    /// The route the request goes to; nil: 404 (or refused before routing).
    public var route: RouteReference?
    /// The route's layers, in the order they run (`RequestPath`), then the ones that watch
    /// every request's end.
    public var layers: [Layer]
    /// The path (and `Host`) the backend gets.
    public var rewrite: Rewrite?
    public var redirect: Redirect?
    public var directResponse: DirectResponse?
    public var backend: Backend?
    /// How long it may take, how it retries, who gets a copy.
    public var exchange: Exchange?
    /// What the client would get, and what decided it.
    public var result: Result
    /// Things the explanation could not know (a JWKS URL the CLI cannot fetch, health that
    /// only the running gateway tracks).
    public var notes: [String]

    public struct Request: Codable, Sendable {
        public var method: String
        public var url: String
        /// The request-target the gateway would receive.
        public var target: String
        /// The host the request is for (the URL's authority, or `Host`).
        public var host: String
        public var listener: String
        public var scheme: String
        public var headers: [Header]
        /// The client certificate's identity (`--client-cert`), as authorization rules see it.
        public var clientPrincipal: String?
    }

    public struct Header: Codable, Sendable, Equatable {
        public var name: String
        public var value: String
    }

    public struct EdgeStep: Codable, Sendable {
        public var check: String
        public var passed: Bool
        public var status: Int?
        public var reason: String?
    }

    public struct RouteReference: Codable, Sendable, Equatable {
        public var index: Int
        public var name: String
        public var file: String
        public var line: Int
    }

    public struct RouteStep: Codable, Sendable {
        public var index: Int
        public var name: String
        public var file: String
        public var line: Int
        /// `failed`, `matched` or `notReached`.
        public var outcome: String
        /// For `failed`: `method`, `host`, `path`, `header` or `grpc`.
        public var failedCondition: String?
        /// For `failed`: what the route wants and what the request has.
        public var reason: String?
        /// For `notReached`: this route would take the request if the winner were not before it.
        public var wouldMatch: Bool?
        /// An earlier route matches every request this one would: it never matches anything.
        public var shadowedBy: RouteReference?
        /// The route's conditions as `portico routes` prints them.
        public var match: String
    }

    public struct Layer: Codable, Sendable {
        /// `cors`, `forwarding-headers`, `jwt`, `authorization`, `rate-limit`, `fault`,
        /// `timeout`, `retries`, `mirror`, `request-headers`, `response-headers`, `metrics`,
        /// `access-log`.
        public var layer: String
        public var config: [String: Value]
        /// The policies the layer applies, with what each decides (jwt, authorization, rate limits).
        public var policies: [Policy]?
        /// `proceed`, `reject`, `answer` (a CORS preflight), `maybe` (a draw decides, as a
        /// fault's percent), `delay`, or `observe` (it only watches the request end).
        public var decision: String
        public var status: Int?
        public var reason: String?
        /// False for the layers after the one that stops the request.
        public var reached: Bool

        public init(layer: String, config: [String: Value] = [:], policies: [Policy]? = nil,
                    decision: String = "proceed", status: Int? = nil, reason: String? = nil, reached: Bool = true) {
            self.layer = layer
            self.config = config
            self.policies = policies
            self.decision = decision
            self.status = status
            self.reason = reason
            self.reached = reached
        }
    }

    public struct Policy: Codable, Sendable {
        public var name: String
        public var line: Int?
        public var config: [String: Value]
        /// `valid`, `missing`, `invalid`, `allow`, `deny`, `limit` (a rate limit: nothing spent).
        public var result: String
        public var reason: String?
        public var token: Token?
    }

    public struct Token: Codable, Sendable {
        /// `missing`, `invalid` or `valid`.
        public var state: String
        /// Why an invalid token fails (`expired`, `bad_signature`, `unknown_kid`, ...).
        public var reason: String?
        public var subject: String?
        public var issuer: String?
        public var claims: [String: ClaimValue]?
    }

    public struct Rewrite: Codable, Sendable {
        /// The path and query the backend gets.
        public var upstreamPath: String
        /// `rewrite.prefix`, when the route rewrites.
        public var prefix: String?
        /// `rewrite.host`: the `Host` the backend gets.
        public var host: String?
    }

    public struct Redirect: Codable, Sendable {
        public var status: Int
        public var location: String
    }

    public struct DirectResponse: Codable, Sendable {
        public var status: Int
        public var contentType: String
        public var bodyBytes: Int
    }

    public struct Backend: Codable, Sendable {
        /// `service`, `function` or `split`.
        public var kind: String
        public var split: Split?
        /// The service or function this request would reach; for a split that draws at random,
        /// every side.
        public var targets: [Target]
    }

    public struct Split: Codable, Sendable {
        public var sides: [Side]
        /// `header NAME` or `cookie NAME`.
        public var stickyOn: String?
        /// The side this request gets, when it is decided (a sticky value); nil: a random draw
        /// per request, by weight.
        public var chosen: String?
        public var reason: String

        public struct Side: Codable, Sendable {
            public var backend: String
            public var weight: Int
            public var percent: Double
        }
    }

    public struct Target: Codable, Sendable {
        /// `service` or `function`.
        public var kind: String
        public var name: String
        /// False when the config names something that is not there (a function not deployed): 503.
        public var exists: Bool
        public var service: Service?
        public var function: Function?
    }

    public struct Service: Codable, Sendable {
        public var loadBalancer: String
        public var `protocol`: String
        public var tls: Bool
        public var connectTimeout: String
        public var endpoints: [Endpoint]
        /// Which endpoint, and why.
        public var choice: String

        public struct Endpoint: Codable, Sendable {
            public var address: String
            /// Known only to the running gateway, and only where health checks run.
            public var healthy: Bool?
            /// Known only to the running gateway, and only with outlier detection.
            public var ejected: Bool?
            public var available: Bool?
        }
    }

    public struct Function: Codable, Sendable {
        /// The serving revision (running gateway only).
        public var revision: String?
        /// `http` (workers) or `exec` (a process per request).
        public var mode: String?
        public var state: String?
        /// Workers ready to take the request now (running gateway only).
        public var warmWorkers: Int?
        public var workers: Int?
        /// Whether the request would wait for a cold start.
        public var choice: String
    }

    public struct Exchange: Codable, Sendable {
        /// The timeout in force: the route's, or a gRPC client's sooner `grpc-timeout`.
        public var timeout: String
        /// Set when the client's `grpc-timeout` is sooner than the route's timeout and replaces it.
        public var grpcTimeout: String?
        public var retries: Retries?
        /// The retry budget of the backend the request reaches (of each side, for a split that draws).
        public var retryBudgets: [RetryBudget]?
        public var mirror: Mirror?

        public struct Retries: Codable, Sendable {
            public var attempts: Int
            public var retryOn: [String]
            public var perTryTimeout: String?
            public var replayBuffer: Int
        }

        public struct RetryBudget: Codable, Sendable {
            public var service: String
            public var percent: Int
            public var interval: String
            public var minRetriesPerSecond: Int
            public var minRetries: Int
        }

        public struct Mirror: Codable, Sendable {
            public var service: String
            public var percent: Double
        }
    }

    public struct Result: Codable, Sendable {
        /// `forward`, `refuse`, `redirect`, `direct` or `answer` (a CORS preflight).
        public var action: String
        /// The status the gateway answers with itself; nil when the backend answers.
        public var status: Int?
        /// What decided: `edge`, `routing`, a layer's name, or the route.
        public var by: String
        public var reason: String
    }

    /// A config value: text, a number, a flag or a list.
    public enum Value: Codable, Sendable, Equatable, CustomStringConvertible {
        case string(String)
        case int(Int)
        case double(Double)
        case bool(Bool)
        case list([String])

        public init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            if let value = try? container.decode(Bool.self) {
                self = .bool(value)
            } else if let value = try? container.decode(Int.self) {
                self = .int(value)
            } else if let value = try? container.decode(Double.self) {
                self = .double(value)
            } else if let value = try? container.decode([String].self) {
                self = .list(value)
            } else {
                self = .string(try container.decode(String.self))
            }
        }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.singleValueContainer()
            switch self {
            case .string(let value): try container.encode(value)
            case .int(let value): try container.encode(value)
            case .double(let value): try container.encode(value)
            case .bool(let value): try container.encode(value)
            case .list(let value): try container.encode(value)
            }
        }

        public var description: String {
            switch self {
            case .string(let value): return value
            case .int(let value): return String(value)
            case .double(let value): return Explanation.number(value)
            case .bool(let value): return value ? "true" : "false"
            case .list(let value): return "[" + value.joined(separator: ", ") + "]"
            }
        }
    }

    /// `10` for 10.0, `2.5` for 2.5: percents read as people write them.
    static func number(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(Int(value)) : String(value)
    }
}
