extension TracingLayer: ExplainableLayer {
    func explain(_ request: inout LayerRequest, context: ExplainContext) -> Explanation.Layer {
        Explanation.Layer(layer: "tracing", decision: "observe",
                          reason: "writes the request's spans when its trace is sampled (or it fails, with alwaysSampleErrors)")
    }
}
