extension AccessLogLayer: ExplainableLayer {
    func explain(_ request: inout LayerRequest, context: ExplainContext) -> Explanation.Layer {
        Explanation.Layer(layer: "access-log", decision: "observe", reason: "writes the request's log line when it ends")
    }
}
