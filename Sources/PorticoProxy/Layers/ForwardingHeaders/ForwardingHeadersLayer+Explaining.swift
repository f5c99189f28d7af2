extension ForwardingHeadersLayer: ExplainableLayer {
    func explain(_ request: inout LayerRequest, context: ExplainContext) -> Explanation.Layer {
        _ = requestHead(&request)
        var added = ["x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "forwarded"]
        if !request.hadRequestID { added.append("x-request-id") }
        if request.connection.forwardedClientCertificate != nil { added.append("x-forwarded-client-cert") }
        return Explanation.Layer(layer: "forwarding-headers", config: ["sets": .list(added)],
                                 reason: "tells the backend about the hop")
    }
}
