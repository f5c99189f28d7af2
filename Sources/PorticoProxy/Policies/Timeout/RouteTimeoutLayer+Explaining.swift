import PorticoConfig

extension RouteTimeoutLayer: ExplainableLayer {
    func explain(_ request: inout LayerRequest, context: ExplainContext) -> Explanation.Layer {
        request.timeout = timeout
        let text = ConfigDuration(nanoseconds: timeout.nanoseconds).description
        return Explanation.Layer(layer: "timeout", config: ["timeout": .string(text)],
                                 reason: "the backend must send its response head within it, or 504")
    }
}
