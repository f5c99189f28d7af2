/// `tracing:`: OpenTelemetry traces of every request, exported over OTLP/HTTP (protobuf).
///
/// Absent, Portico records nothing and passes `traceparent` through untouched, as before.
public struct TracingConfig: Sendable, Equatable {
    /// Where spans go: the collector's OTLP/HTTP traces URL (`http://HOST:4318/v1/traces`).
    public var endpoint: OTLPEndpoint
    /// The resource's `service.name`.
    public var serviceName: String
    /// The share of new traces (requests without a sampled parent) that are recorded, 0 to 1.
    public var ratio: Double
    /// A request whose `traceparent` says whether its trace is sampled follows that decision
    /// (OpenTelemetry's `parentbased_traceidratio`, the SDKs' default shape).
    public var parentBased: Bool
    /// A request that ends with a 5xx is exported even when its trace was not sampled.
    public var alwaysSampleErrors: Bool
    /// How long finished spans wait on a loop before they go to the exporter.
    public var exportInterval: ConfigDuration
    /// How long one export may take before it is abandoned (its spans dropped and counted).
    public var exportTimeout: ConfigDuration
    /// The spans that may wait for export across the gateway; past it, new ones are dropped
    /// and counted, so a slow or absent collector costs bounded memory.
    public var maxQueueSize: Int

    public init(endpoint: OTLPEndpoint, serviceName: String = "portico", ratio: Double = 1, parentBased: Bool = true,
                alwaysSampleErrors: Bool = false, exportInterval: ConfigDuration = .seconds(1),
                exportTimeout: ConfigDuration = .seconds(5), maxQueueSize: Int = 8192) {
        self.endpoint = endpoint
        self.serviceName = serviceName
        self.ratio = ratio
        self.parentBased = parentBased
        self.alwaysSampleErrors = alwaysSampleErrors
        self.exportInterval = exportInterval
        self.exportTimeout = exportTimeout
        self.maxQueueSize = maxQueueSize
    }
}

/// An OTLP/HTTP collector address: plain HTTP, as a local collector or agent listens (TLS to a
/// remote backend is the collector's job).
public struct OTLPEndpoint: Sendable, Equatable, CustomStringConvertible {
    public var address: HostPort
    public var path: String

    public init(address: HostPort, path: String) {
        self.address = address
        self.path = path
    }

    /// `http://host:port[/path]`; without a path, OTLP/HTTP's `/v1/traces`.
    public static func parse(_ text: String) -> OTLPEndpoint? {
        guard text.hasPrefix("http://") else { return nil }
        let rest = text.dropFirst("http://".count)
        let slash = rest.firstIndex(of: "/") ?? rest.endIndex
        guard let address = HostPort.parse(String(rest[..<slash]), allowPortZero: false) else { return nil }
        var path = String(rest[slash...])
        if path.isEmpty || path == "/" { path = "/v1/traces" }
        guard !path.contains(where: { $0 == " " || $0 == "?" || $0 == "#" }) else { return nil }
        return OTLPEndpoint(address: address, path: path)
    }

    public var description: String { "http://\(address)\(path)" }
}
