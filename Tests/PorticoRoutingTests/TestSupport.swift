import PorticoConfig
@testable import PorticoRouting
import XCTest

/// A request as the proxy would present it to the route table.
struct TestRequest: RoutableRequest {
    var method = "GET"
    var authority = "api.example.com"
    var normalizedPath = "/"
    /// Keyed by lower-cased name.
    var headers: [String: String] = [:]

    func firstHeaderValue(lowercasedName: String) -> String? {
        headers[lowercasedName]
    }
}

func route(
    _ name: String,
    host: HostMatch? = nil,
    path: PathMatch = .any,
    headers: [HeaderMatch] = [],
    methods: [String] = [],
    action: RouteAction = .service("backend"),
    timeout: ConfigDuration = .seconds(15),
    rewrite: RewriteConfig? = nil
) -> RouteConfig {
    RouteConfig(
        index: 0,
        name: name,
        match: RouteMatch(host: host, path: path, headers: headers, methods: methods),
        action: action,
        timeout: timeout,
        rewrite: rewrite,
        location: SourceLocation(file: "gateway.yaml", line: 1, column: 1)
    )
}

/// A table from routes in match order, with `index` set as the loader would.
func table(_ routes: RouteConfig...) throws -> RouteTable {
    try RouteTable(routes.enumerated().map { index, route in
        var route = route
        route.index = index
        return route
    })
}

extension RouteTable {
    /// The name of the route `request` lands on, `nil` for a 404.
    func routeName(for request: TestRequest) -> String? {
        match(request)?.config.name
    }
}
