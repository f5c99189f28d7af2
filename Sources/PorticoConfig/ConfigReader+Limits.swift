import Yams

extension ConfigReader {
    /// `limits:` — every key optional; an absent key keeps `LimitsConfig`'s default.
    func limits(_ node: Node) -> LimitsConfig {
        var limits = LimitsConfig()
        let allowed = ["maxRequestHeaders", "maxRequestBody", "idleTimeout", "drainTimeout", "requestHeadersTimeout"]
        guard let fields = fields(node, key: "limits", allowed: allowed) else { return limits }
        if let value = fields["maxRequestHeaders"].flatMap({ size($0, key: fields.path("maxRequestHeaders")) }) {
            limits.maxRequestHeaders = value
        }
        if let value = fields["maxRequestBody"].flatMap({ size($0, key: fields.path("maxRequestBody")) }) {
            limits.maxRequestBody = value
        }
        if let value = fields["idleTimeout"].flatMap({ duration($0, key: fields.path("idleTimeout")) }) {
            limits.idleTimeout = value
        }
        if let value = fields["drainTimeout"].flatMap({ duration($0, key: fields.path("drainTimeout")) }) {
            limits.drainTimeout = value
        }
        if let value = fields["requestHeadersTimeout"].flatMap({ duration($0, key: fields.path("requestHeadersTimeout")) }) {
            limits.requestHeadersTimeout = value
        }
        return limits
    }

    /// `accessLog:` — `{ format: json }` or `{ format: off }`.
    func accessLog(_ node: Node) -> AccessLogConfig {
        var accessLog = AccessLogConfig()
        guard let fields = fields(node, key: "accessLog", allowed: ["format"]) else { return accessLog }
        if let formatNode = fields["format"],
           let format = choice(formatNode, key: fields.path("format"), [("json", AccessLogFormat.json), ("off", .off)]) {
            accessLog.format = format
        }
        return accessLog
    }
}
