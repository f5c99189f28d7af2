extension MetricsLayer: ExplainableLayer {
    func explain(_ request: inout LayerRequest, context: ExplainContext) -> Explanation.Layer {
        Explanation.Layer(layer: "metrics", decision: "observe", reason: "counts the request when it ends")
    }
}
