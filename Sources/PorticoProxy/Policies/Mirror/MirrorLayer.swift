import PorticoConfig

/// A route's `mirror`: a copy of `percent` of its requests goes to another service, fire and
/// forget (`ShadowRequest`). The draw is made here; the exchange sends the copy once the
/// request has a backend.
final class MirrorLayer: RequestLayer {
    let mirror: MirrorConfig

    init(mirror: MirrorConfig) {
        self.mirror = mirror
    }

    func requestHead(_ request: inout LayerRequest) -> LayerVerdict {
        if request.random.percentDraw() < mirror.percent { request.mirrorService = mirror.service }
        return .proceed
    }
}
