import PorticoHTTP1

/// `limits.maxRequestHeaders`: the target and the fields together (431, as nginx and Envoy
/// answer an oversized head).
final class HeaderSizeCheck: EdgeCheck {
    let maxRequestHeaders: Int

    init(maxRequestHeaders: Int) {
        self.maxRequestHeaders = maxRequestHeaders
    }

    func check(_ request: inout EdgeRequest) -> EdgeVerdict {
        request.head.fields.wireSize + request.head.target.utf8.count > maxRequestHeaders
            ? .reject(.headersTooLarge, close: true) : .pass
    }
}
