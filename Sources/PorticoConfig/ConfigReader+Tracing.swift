import Yams

extension ConfigReader {
    /// `tracing: { endpoint, serviceName, sampling: { ratio, parentBased, alwaysSampleErrors },
    /// exportInterval, exportTimeout, maxQueueSize }`.
    func tracing(_ node: Node) -> TracingConfig? {
        guard let fields = fields(node, key: "tracing", allowed: [
            "endpoint", "serviceName", "sampling", "exportInterval", "exportTimeout", "maxQueueSize",
        ]) else { return nil }
        guard let endpointNode = fields["endpoint"] else {
            requireKey("endpoint", in: fields, message: "missing required key 'endpoint' (the collector's OTLP/HTTP URL, such as http://127.0.0.1:4318/v1/traces)")
            return nil
        }
        guard let text = string(endpointNode, key: fields.path("endpoint")) else { return nil }
        guard let endpoint = OTLPEndpoint.parse(text) else {
            error("expected an http:// URL of an OTLP/HTTP collector, such as http://127.0.0.1:4318/v1/traces, got '\(text)'",
                  at: endpointNode, key: fields.path("endpoint"))
            return nil
        }
        var config = TracingConfig(endpoint: endpoint)
        if let nameNode = fields["serviceName"], let name = string(nameNode, key: fields.path("serviceName")) {
            if name.isEmpty {
                error("must not be empty", at: nameNode, key: fields.path("serviceName"))
            } else {
                config.serviceName = name
            }
        }
        if let samplingNode = fields["sampling"],
           let sampling = self.fields(samplingNode, key: fields.path("sampling"),
                                      allowed: ["ratio", "parentBased", "alwaysSampleErrors"]) {
            if let ratioNode = sampling["ratio"] {
                let key = sampling.path("ratio")
                if case .scalar(let scalar) = ratioNode, let value = Double(scalar.string), value.isFinite,
                   scalar.string.allSatisfy({ $0.isASCII && ($0.isNumber || $0 == ".") }) {
                    if value <= 1 {
                        config.ratio = value
                    } else {
                        error("must be from 0 to 1 (the share of new traces recorded), got \(scalar.string)", at: ratioNode, key: key)
                    }
                } else {
                    error("expected a number from 0 to 1\(Self.got(ratioNode))", at: ratioNode, key: key)
                }
            }
            if let node = sampling["parentBased"], let value = bool(node, key: sampling.path("parentBased")) {
                config.parentBased = value
            }
            if let node = sampling["alwaysSampleErrors"], let value = bool(node, key: sampling.path("alwaysSampleErrors")) {
                config.alwaysSampleErrors = value
            }
        }
        if let node = fields["exportInterval"], let value = duration(node, key: fields.path("exportInterval")) {
            config.exportInterval = value
        }
        if let node = fields["exportTimeout"], let value = duration(node, key: fields.path("exportTimeout")) {
            config.exportTimeout = value
        }
        if let node = fields["maxQueueSize"],
           let value = int(node, key: fields.path("maxQueueSize"), in: 1...1_000_000,
                           rangeMessage: "must be from 1 to 1000000 spans") {
            config.maxQueueSize = value
        }
        return config
    }
}
