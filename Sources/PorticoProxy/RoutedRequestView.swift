import PorticoHTTP1
import PorticoRouting

/// Adapts a request head (HTTP/1 or HTTP/2) to route matching.
struct RoutedRequestView: RoutableRequest {
    let head: RequestHead
    let authority: String
    let normalizedPath: String

    var method: String { head.method }

    func firstHeaderValue(lowercasedName: String) -> String? {
        head.fields.firstValue(named: lowercasedName)
    }

    func headerValues(lowercasedName: String) -> [String] {
        head.fields.values(named: lowercasedName)
    }
}
