extension ResponseHeadersPolicy: ExplainableLayer {
    func explain(_ request: inout LayerRequest, context: ExplainContext) -> Explanation.Layer {
        Explanation.Layer(layer: "response-headers", config: edits.explainedConfig,
                          reason: "edits the backend's answer: " + edits.explainedSummary)
    }
}
