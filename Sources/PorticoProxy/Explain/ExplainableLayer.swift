import PorticoConfig

/// A layer that can say what it would do with a request without doing it, for `portico
/// explain`: nothing counted, no token spent, no draw made.
///
/// A separate protocol from `RequestLayer` so that the request path's hooks stay as they are;
/// `RequestExplainer` walks the very list `RequestPath` assembles and asks each layer. A layer
/// that does not conform is still listed, by its type's name.
protocol ExplainableLayer: RequestLayer {
    /// What this layer would decide about `request`; edits the request as the layer would
    /// (a verified token for the layers after a `jwt` layer, the retries, the mirror).
    func explain(_ request: inout LayerRequest, context: ExplainContext) -> Explanation.Layer
}

extension Explanation.Value {
    static func duration(_ duration: ConfigDuration) -> Explanation.Value { .string(duration.description) }
}
