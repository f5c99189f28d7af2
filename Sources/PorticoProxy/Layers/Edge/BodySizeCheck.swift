import PorticoHTTP1

/// `limits.maxRequestBody`, for a body whose length is announced: refused before a byte of it
/// is read. (A chunked or HTTP/2 body is counted as it comes, by the exchange.)
final class BodySizeCheck: EdgeCheck {
    let maxRequestBody: Int

    init(maxRequestBody: Int) {
        self.maxRequestBody = maxRequestBody
    }

    func check(_ request: inout EdgeRequest) -> EdgeVerdict {
        if let length = request.contentLength, length > maxRequestBody { return .reject(.bodyTooLarge, close: true) }
        return .pass
    }
}
