import NIOHTTP1
import PorticoRouting

/// Adapts an HTTP/1 head (HTTP/2 streams arrive as HTTP/1 heads too) to route matching.
struct RoutedRequestView: RoutableRequest {
    let head: HTTPRequestHead
    let authority: String
    let normalizedPath: String

    var method: String { head.method.rawValue }

    func firstHeaderValue(lowercasedName: String) -> String? {
        head.headers.first(name: lowercasedName)
    }

    func headerValues(lowercasedName: String) -> [String] {
        head.headers[lowercasedName]
    }
}
