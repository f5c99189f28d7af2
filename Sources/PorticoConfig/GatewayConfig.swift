/// The validated, immutable snapshot of `gateway.yaml` that the rest of Portico runs on.
///
/// Nothing outside `ConfigLoader` builds one from raw YAML: by the time a value of this type
/// exists, every reference resolves and every number is in range.
public struct GatewayConfig: Sendable, Equatable {
    /// The file it was read from, as given on the command line (used in messages only).
    public var sourceFile: String
    public var listeners: [ListenerConfig]
    public var admin: AdminConfig?
    public var limits: LimitsConfig
    /// Services by name, in the order the file declares them.
    public var services: [ServiceConfig]
    /// Routes in match order: the first match wins.
    public var routes: [RouteConfig]
    public var accessLog: AccessLogConfig
    /// Named policies that routes and listeners apply, in file order.
    public var policies: [PolicyConfig]
    /// `tcp:` listeners, in file order.
    public var tcp: [TCPListenerConfig]
    /// `tracing:`, when requests are traced.
    public var tracing: TracingConfig?

    public init(
        sourceFile: String,
        listeners: [ListenerConfig],
        admin: AdminConfig?,
        limits: LimitsConfig = LimitsConfig(),
        services: [ServiceConfig],
        routes: [RouteConfig],
        accessLog: AccessLogConfig = AccessLogConfig(),
        policies: [PolicyConfig] = [],
        tcp: [TCPListenerConfig] = [],
        tracing: TracingConfig? = nil
    ) {
        self.tracing = tracing
        self.policies = policies
        self.tcp = tcp
        self.sourceFile = sourceFile
        self.listeners = listeners
        self.admin = admin
        self.limits = limits
        self.services = services
        self.routes = routes
        self.accessLog = accessLog
    }

    public func service(named name: String) -> ServiceConfig? {
        services.first { $0.name == name }
    }
}

/// `host:port`, with IPv6 hosts written in brackets (`[::1]:8080`).
public struct HostPort: Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    public var description: String {
        host.utf8.contains(UInt8(ascii: ":")) ? "[\(host)]:\(port)" : "\(host):\(port)"
    }
}

/// A span of time from the config (`250ms`, `2s`, `1m`, `1h30m`).
public struct ConfigDuration: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var nanoseconds: Int64

    public init(nanoseconds: Int64) { self.nanoseconds = nanoseconds }
    public static func milliseconds(_ ms: Int64) -> ConfigDuration { .init(nanoseconds: ms * 1_000_000) }
    public static func seconds(_ s: Int64) -> ConfigDuration { .init(nanoseconds: s * 1_000_000_000) }

    public static func < (lhs: ConfigDuration, rhs: ConfigDuration) -> Bool { lhs.nanoseconds < rhs.nanoseconds }

    public var description: String {
        if nanoseconds % 1_000_000_000 == 0 { return "\(nanoseconds / 1_000_000_000)s" }
        if nanoseconds % 1_000_000 == 0 { return "\(nanoseconds / 1_000_000)ms" }
        return "\(nanoseconds)ns"
    }
}

public struct ListenerConfig: Sendable, Equatable {
    public var name: String
    public var address: HostPort
    /// Present for a TLS listener (ALPN offers h2 and http/1.1); absent for cleartext
    /// HTTP/1.1 plus h2c with prior knowledge on the same port.
    public var tls: ListenerTLSConfig?
    /// Policies applied to every request on this listener, before the route's own.
    public var policies: [String]
    /// What happens to request headers whose name has an `_` (Envoy's
    /// `headers_with_underscores_action`).
    public var headersWithUnderscores: UnderscoreHeaderAction

    public init(name: String, address: HostPort, tls: ListenerTLSConfig? = nil, policies: [String] = [],
                headersWithUnderscores: UnderscoreHeaderAction = .drop) {
        self.name = name
        self.address = address
        self.tls = tls
        self.policies = policies
        self.headersWithUnderscores = headersWithUnderscores
    }
}

/// Request headers named with an `_` (`Content_Length`) can turn into framing or identity headers
/// at a backend that maps `_` and `-` to one another (CGI, WSGI, PHP), so a gateway does not pass
/// them on blindly. Whatever the action, a request that has such a header and a body
/// (`Content-Length` or `Transfer-Encoding`) gets 400, except with `allow`.
public enum UnderscoreHeaderAction: String, Sendable, Equatable {
    /// They are removed before the request is forwarded (the default; nginx ignores them too).
    case drop
    /// The request gets 400.
    case reject
    /// They are forwarded as they came.
    case allow
}

public struct ListenerTLSConfig: Sendable, Equatable {
    /// How a listener with a `clientCA` treats clients, as Istio's PeerAuthentication modes.
    public enum ClientCertificateMode: String, Sendable, Equatable {
        /// Every client presents a certificate the CA signed, or the handshake fails.
        case strict
        /// Clients with a valid certificate get a principal; clients without one, and
        /// plaintext HTTP on the same port, are served without.
        case permissive
    }

    /// PEM certificate chain and PEM private key, relative to the working directory.
    public var certificate: String
    public var key: String
    /// PEM CA certificates that sign client certificates; nil: clients are not asked for one.
    public var clientCA: String?
    public var mode: ClientCertificateMode
    /// TLS 1.2 cipher suites by OpenSSL name, in the order the server prefers them (the
    /// server's order wins over the client's). Default: `TLSCipherSuites.defaultOrder`.
    public var cipherSuites: [String]
    /// More certificates, each shown to clients that ask (by SNI) for one of its names;
    /// `certificate` and `key` serve every other client.
    public var sniCertificates: [ListenerCertificateConfig]

    public init(certificate: String, key: String, clientCA: String? = nil, mode: ClientCertificateMode = .strict,
                cipherSuites: [String] = TLSCipherSuites.defaultOrder, sniCertificates: [ListenerCertificateConfig] = []) {
        self.sniCertificates = sniCertificates
        self.certificate = certificate
        self.key = key
        self.clientCA = clientCA
        self.mode = mode
        self.cipherSuites = cipherSuites
    }
}

public struct AdminConfig: Sendable, Equatable {
    public var address: HostPort
    public init(address: HostPort) { self.address = address }
}

/// Edge limits applied to every request on every listener.
public struct LimitsConfig: Sendable, Equatable {
    /// Total size of the request line and headers; over it: 431.
    public var maxRequestHeaders: Int
    /// Request body size; over it: 413.
    public var maxRequestBody: Int
    /// A downstream or pooled upstream connection with no traffic for this long is closed.
    public var idleTimeout: ConfigDuration
    /// On SIGTERM/SIGINT, how long in-flight requests may take to finish before exit.
    public var drainTimeout: ConfigDuration
    /// A request head begun but not finished this long after its first byte: 408 and close.
    public var requestHeadersTimeout: ConfigDuration

    public init(
        maxRequestHeaders: Int = 60 * 1024,
        maxRequestBody: Int = 10 * 1024 * 1024,
        idleTimeout: ConfigDuration = .seconds(60),
        drainTimeout: ConfigDuration = .seconds(30),
        requestHeadersTimeout: ConfigDuration = .seconds(10)
    ) {
        self.requestHeadersTimeout = requestHeadersTimeout
        self.maxRequestHeaders = maxRequestHeaders
        self.maxRequestBody = maxRequestBody
        self.idleTimeout = idleTimeout
        self.drainTimeout = drainTimeout
    }
}

/// Request mirroring, as Istio's VirtualService `mirror` and `mirrorPercentage`: fire and
/// forget, the shadow's answer ignored, its `Host` suffixed `-shadow` (as Envoy does).
public struct MirrorConfig: Sendable, Equatable {
    public var service: String
    /// 0 to 100, fractions allowed.
    public var percent: Double

    public init(service: String, percent: Double = 100) {
        self.service = service
        self.percent = percent
    }
}

/// A source location that every other one equals, for config values whose identity does not
/// depend on where in the file they are written.
public struct UncomparedLocation: Sendable, Equatable {
    public var value: SourceLocation?
    public init(_ value: SourceLocation?) { self.value = value }
    public static func == (lhs: UncomparedLocation, rhs: UncomparedLocation) -> Bool { true }
}

/// Passive health checking, as Istio's DestinationRule `outlierDetection`: an endpoint that
/// keeps failing is ejected from the load balancer for `baseEjectionTime` × its ejections.
public struct OutlierDetectionConfig: Sendable, Equatable {
    /// 5xx answers (and failures to answer) in a row before an ejection; nil: off.
    public var consecutive5xx: Int?
    /// 502, 503, 504 answers (and failures to answer) in a row before an ejection; nil: off.
    public var consecutiveGatewayErrors: Int?
    public var interval: ConfigDuration
    public var baseEjectionTime: ConfigDuration
    public var maxEjectionPercent: Int

    public init(consecutive5xx: Int? = 5, consecutiveGatewayErrors: Int? = nil, interval: ConfigDuration = .seconds(10),
                baseEjectionTime: ConfigDuration = .seconds(30), maxEjectionPercent: Int = 10) {
        self.consecutive5xx = consecutive5xx
        self.consecutiveGatewayErrors = consecutiveGatewayErrors
        self.interval = interval
        self.baseEjectionTime = baseEjectionTime
        self.maxEjectionPercent = maxEjectionPercent
    }
}

/// Envoy's circuit-breaking thresholds (Istio's `connectionPool`). Over a limit: 503 at once.
public struct CircuitBreakerConfig: Sendable, Equatable {
    /// Open connections to one endpoint from one event loop.
    public var maxConnections: Int?
    /// Requests of the service waiting for a connection, per event loop.
    public var maxPendingRequests: Int?
    /// A connection is closed after serving this many requests.
    public var maxRequestsPerConnection: Int?

    public init(maxConnections: Int? = nil, maxPendingRequests: Int? = nil, maxRequestsPerConnection: Int? = nil) {
        self.maxConnections = maxConnections
        self.maxPendingRequests = maxPendingRequests
        self.maxRequestsPerConnection = maxRequestsPerConnection
    }
}

/// Active health checking, as Envoy's HTTP health checker: `GET path` on each endpoint every
/// `interval`; a 2xx is healthy. Unhealthy endpoints are left out of the load balancer.
public struct HealthCheckConfig: Sendable, Equatable {
    public var path: String
    public var interval: ConfigDuration
    public var timeout: ConfigDuration
    public var unhealthyThreshold: Int
    public var healthyThreshold: Int

    public init(path: String, interval: ConfigDuration = .seconds(10), timeout: ConfigDuration = .seconds(1),
                unhealthyThreshold: Int = 3, healthyThreshold: Int = 2) {
        self.path = path
        self.interval = interval
        self.timeout = timeout
        self.unhealthyThreshold = unhealthyThreshold
        self.healthyThreshold = healthyThreshold
    }
}

/// TLS to a service's endpoints: the upstream's certificate is verified against `ca` (or the
/// system's roots) and `serverName`/`subjectAltNames`; `certificate` and `key` make it mTLS.
public struct UpstreamTLSConfig: Sendable, Equatable {
    public var ca: String?
    public var certificate: String?
    public var key: String?
    /// SNI, and the name the certificate must carry when `subjectAltNames` is empty.
    public var serverName: String?
    /// The upstream certificate must carry one of these SANs (DNS names or URIs such as SPIFFE IDs).
    public var subjectAltNames: [String]

    public init(ca: String? = nil, certificate: String? = nil, key: String? = nil, serverName: String? = nil,
                subjectAltNames: [String] = []) {
        self.ca = ca
        self.certificate = certificate
        self.key = key
        self.serverName = serverName
        self.subjectAltNames = subjectAltNames
    }
}

public enum LoadBalancerKind: String, Sendable, Equatable, CaseIterable {
    case roundRobin = "round_robin"
    case leastRequest = "least_request"
    case random = "random"
}

public struct ServiceConfig: Sendable, Equatable {
    public var name: String
    public var endpoints: [HostPort]
    public var loadBalancer: LoadBalancerKind
    /// How long to wait for a TCP connection to an endpoint before giving up (502).
    public var connectTimeout: ConfigDuration
    /// Cap on open connections to one endpoint from one event loop.
    public var maxConnectionsPerEndpoint: Int
    public var retryBudget: RetryBudgetConfig
    public var outlierDetection: OutlierDetectionConfig?
    public var circuitBreaker: CircuitBreakerConfig?
    public var healthCheck: HealthCheckConfig?
    /// The endpoints are reached over TLS (or mTLS) when present.
    public var tls: UpstreamTLSConfig?
    /// What the endpoints speak: HTTP/1.1 (the default), HTTP/2 in plaintext or over TLS, or
    /// whichever ALPN agrees on.
    public var `protocol`: UpstreamProtocol = .http1
    /// Where the service is declared, for errors found after parsing (a TLS file that does
    /// not load). Not part of equality: moving a service in the file does not change it.
    public var location: UncomparedLocation = UncomparedLocation(nil)

    public init(
        name: String,
        endpoints: [HostPort],
        loadBalancer: LoadBalancerKind = .roundRobin,
        connectTimeout: ConfigDuration = .seconds(5),
        maxConnectionsPerEndpoint: Int = 1024,
        retryBudget: RetryBudgetConfig = RetryBudgetConfig(),
        outlierDetection: OutlierDetectionConfig? = nil,
        circuitBreaker: CircuitBreakerConfig? = nil,
        healthCheck: HealthCheckConfig? = nil,
        tls: UpstreamTLSConfig? = nil
    ) {
        self.retryBudget = retryBudget
        self.outlierDetection = outlierDetection
        self.circuitBreaker = circuitBreaker
        self.healthCheck = healthCheck
        self.tls = tls
        self.name = name
        self.endpoints = endpoints
        self.loadBalancer = loadBalancer
        self.connectTimeout = connectTimeout
        self.maxConnectionsPerEndpoint = maxConnectionsPerEndpoint
    }
}

/// Where a config value came from, for messages such as `portico check` warnings.
public struct SourceLocation: Sendable, Hashable {
    public var file: String
    public var line: Int
    public var column: Int

    public init(file: String, line: Int, column: Int) {
        self.file = file
        self.line = line
        self.column = column
    }
}

public struct RouteConfig: Sendable, Equatable {
    /// The route's position in the file (0-based), also its default name (`route-N`).
    public var index: Int
    public var name: String
    public var match: RouteMatch
    public var action: RouteAction
    /// Overall time for the upstream to send its response head; over it: 504. Default 15s.
    public var timeout: ConfigDuration
    public var rewrite: RewriteConfig?
    /// Names of the policies this route applies, in order (after its listener's).
    public var policies: [String]
    public var fault: FaultConfig?
    public var retries: RetryConfig?
    /// A copy of a share of the requests goes to this service as well; its answers are dropped.
    public var mirror: MirrorConfig?
    /// The `Upgrade` protocols this route tunnels (lower-cased), as Envoy's `upgrade_configs`:
    /// `websocket` by default. A request asking for any other is served without the upgrade.
    public var upgrades: [String]
    /// For a split: keeps one client on one side (`split: { backends, stickyOn }`). Without
    /// it, each request draws by weight.
    public var splitStickyOn: SplitStickiness?
    /// Header edits on the request sent to the backend, and on the backend's answer.
    public var requestHeaders: HeaderModifierConfig?
    public var responseHeaders: HeaderModifierConfig?
    /// Cross-origin requests from browsers (a gRPC-Web app on another origin): preflights
    /// answered here, and the answers marked for the origins allowed.
    public var cors: CORSConfig?
    /// Where the route starts in the config file.
    public var location: SourceLocation

    public init(
        index: Int,
        name: String,
        match: RouteMatch,
        action: RouteAction,
        timeout: ConfigDuration = .seconds(15),
        rewrite: RewriteConfig? = nil,
        policies: [String] = [],
        fault: FaultConfig? = nil,
        retries: RetryConfig? = nil,
        mirror: MirrorConfig? = nil,
        upgrades: [String] = RouteConfig.defaultUpgrades,
        splitStickyOn: SplitStickiness? = nil,
        requestHeaders: HeaderModifierConfig? = nil,
        responseHeaders: HeaderModifierConfig? = nil,
        location: SourceLocation
    ) {
        self.requestHeaders = requestHeaders
        self.responseHeaders = responseHeaders
        self.upgrades = upgrades
        self.retries = retries
        self.splitStickyOn = splitStickyOn
        self.mirror = mirror
        self.policies = policies
        self.fault = fault
        self.index = index
        self.name = name
        self.match = match
        self.action = action
        self.timeout = timeout
        self.rewrite = rewrite
        self.location = location
    }
}

extension RouteConfig {
    /// WebSocket only, as Envoy and nginx proxy upgrades only where they are configured.
    public static let defaultUpgrades = ["websocket"]
}

public enum RouteAction: Sendable, Equatable {
    case service(String)
    /// A function deployed from the functions folder (`Functions/<name>/function.yaml`).
    case function(String)
    case split([WeightedBackend])
    case directResponse(DirectResponseConfig)
    case redirect(RedirectConfig)

    /// Whether requests go on to a backend (rather than being answered by the gateway).
    public var forwards: Bool {
        switch self {
        case .service, .function, .split: return true
        case .directResponse, .redirect: return false
        }
    }
}

/// Where a proxied request goes: a service's endpoints, or a function's workers.
public enum BackendReference: Sendable, Hashable, CustomStringConvertible {
    case service(String)
    case function(String)

    public var name: String {
        switch self {
        case .service(let name), .function(let name): return name
        }
    }

    public var description: String {
        switch self {
        case .service(let name): return name
        case .function(let name): return "function:" + name
        }
    }
}

/// Where a split finds the value that keeps a client on one side: a request carrying it goes
/// where the value's hash lands, the same side every time; one without it draws by weight.
public enum SplitStickiness: Sendable, Equatable {
    /// A request header, by lower-cased name.
    case header(String)
    /// A cookie of the `Cookie` header, by its exact (case-sensitive) name.
    case cookie(String)
}

public struct WeightedBackend: Sendable, Equatable {
    public var backend: BackendReference
    public var weight: Int

    public init(backend: BackendReference, weight: Int) {
        self.backend = backend
        self.weight = weight
    }

    public init(service: String, weight: Int) {
        self.init(backend: .service(service), weight: weight)
    }

    public init(function: String, weight: Int) {
        self.init(backend: .function(function), weight: weight)
    }
}

public struct DirectResponseConfig: Sendable, Equatable {
    public var status: Int
    public var body: String
    public var contentType: String

    public init(status: Int, body: String = "", contentType: String = "text/plain; charset=utf-8") {
        self.status = status
        self.body = body
        self.contentType = contentType
    }
}

/// Each part that is set replaces that part of the request URL; the rest is kept.
public struct RedirectConfig: Sendable, Equatable {
    public var scheme: String?
    public var host: String?
    public var port: Int?
    /// Replaces the whole path.
    public var path: String?
    /// Replaces the matched prefix (only for prefix routes).
    public var prefix: String?
    /// 301, 302, 303, 307 or 308; default 301.
    public var status: Int
    public var stripQuery: Bool

    public init(scheme: String? = nil, host: String? = nil, port: Int? = nil, path: String? = nil,
                prefix: String? = nil, status: Int = 301, stripQuery: Bool = false) {
        self.scheme = scheme
        self.host = host
        self.port = port
        self.path = path
        self.prefix = prefix
        self.status = status
        self.stripQuery = stripQuery
    }
}

public struct RewriteConfig: Sendable, Equatable {
    /// Replaces the matched prefix (prefix routes) or the whole path (other routes).
    public var prefix: String?
    /// Replaces the `Host` header sent upstream.
    public var host: String?

    public init(prefix: String? = nil, host: String? = nil) {
        self.prefix = prefix
        self.host = host
    }
}

public enum AccessLogFormat: String, Sendable, Equatable {
    case json
    case off
}

public struct AccessLogConfig: Sendable, Equatable {
    public var format: AccessLogFormat
    public init(format: AccessLogFormat = .json) { self.format = format }
}

/// One finding about a config file, printed as `FILE:LINE:COLUMN: KEY: message`.
public struct ConfigDiagnostic: Sendable, Equatable, CustomStringConvertible {
    public enum Severity: String, Sendable { case error, warning }

    public var severity: Severity
    public var location: SourceLocation
    /// Dotted path to the offending key, such as `routes[2].match.prefix`.
    public var key: String
    public var message: String

    public init(severity: Severity = .error, location: SourceLocation, key: String, message: String) {
        self.severity = severity
        self.location = location
        self.key = key
        self.message = message
    }

    public var description: String {
        let prefix = severity == .warning ? "warning: " : ""
        return "\(location.file):\(location.line):\(location.column): \(key): \(prefix)\(message)"
    }
}

/// A config that could not be loaded; `diagnostics` holds every error found, not just the first.
public struct ConfigError: Error, Sendable, CustomStringConvertible {
    public var diagnostics: [ConfigDiagnostic]
    public init(_ diagnostics: [ConfigDiagnostic]) { self.diagnostics = diagnostics }
    public var description: String { diagnostics.map(\.description).joined(separator: "\n") }
}
