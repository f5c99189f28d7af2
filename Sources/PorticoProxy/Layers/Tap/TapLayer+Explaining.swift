extension TapLayer: ExplainableLayer {
    func explain(_ request: inout LayerRequest, context: ExplainContext) -> Explanation.Layer {
        Explanation.Layer(layer: "tap", decision: "observe",
                          reason: "hands the request's end to open taps and dashboards (none open: nothing)")
    }
}
