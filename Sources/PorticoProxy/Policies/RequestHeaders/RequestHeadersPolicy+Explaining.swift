extension RequestHeadersPolicy: ExplainableLayer {
    func explain(_ request: inout LayerRequest, context: ExplainContext) -> Explanation.Layer {
        Explanation.Layer(layer: "request-headers", config: edits.explainedConfig,
                          reason: "edits the request the backend gets: " + edits.explainedSummary)
    }
}
