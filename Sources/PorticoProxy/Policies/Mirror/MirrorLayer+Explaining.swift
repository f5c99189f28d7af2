extension MirrorLayer: ExplainableLayer {
    /// No draw: the mirror is named, and the share it gets.
    func explain(_ request: inout LayerRequest, context: ExplainContext) -> Explanation.Layer {
        if mirror.percent > 0 { request.mirrorService = mirror.service }
        return Explanation.Layer(layer: "mirror", config: ["service": .string(mirror.service), "percent": .double(mirror.percent)],
                                 decision: "proceed",
                                 reason: "\(Explanation.number(mirror.percent))% of requests are copied to \(mirror.service), its answers dropped")
    }
}
