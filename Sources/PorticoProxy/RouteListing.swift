import Foundation
import PorticoConfig

/// The admin API's `GET /routes` body: every route in match order, as structured objects (its
/// conditions, what it does, the policies on it and where it is written), not text lines.
///
/// The shape follows the config's keys where the config has one (`prefix`, `directResponse`,
/// `split`), so what an operator reads here is what they would write.
struct RouteListing: Encodable {
    var generation: Int
    var routes: [Route]

    init(generation: Int, routes: [RouteConfig]) {
        self.generation = generation
        self.routes = routes.map(Route.init)
    }

    struct Route: Encodable {
        var index: Int
        var name: String
        /// Where the route is written: the config file (or a function's `function.yaml`) and line.
        var file: String
        var line: Int
        var match: Match
        var action: Action
        /// Named policies on the route, in the order written (a listener's come on top).
        var policies: [String]
        /// Only for routes that forward: how long a request may take, and what changes on its way.
        var timeout: String?
        var rewrite: Rewrite?
        var retries: Retries?
        var fault: Fault?
        var mirror: Mirror?
        var cors: Bool?
        var upgrades: [String]?

        init(_ route: RouteConfig) {
            index = route.index
            name = route.name
            file = route.location.file
            line = route.location.line
            match = Match(route.match)
            action = Action(route.action, sticky: route.splitStickyOn)
            policies = route.policies
            guard route.action.forwards else { return }
            timeout = route.timeout.description
            rewrite = route.rewrite.map { Rewrite(prefix: $0.prefix, host: $0.host) }
            retries = route.retries.map {
                Retries(attempts: $0.attempts, perTryTimeout: $0.perTryTimeout?.description, retryOn: $0.retryOn.map(\.rawValue))
            }
            fault = route.fault.map { fault in
                Fault(abort: fault.abort.map { .init(percent: $0.percent, status: $0.status) },
                      delay: fault.delay.map { .init(percent: $0.percent, duration: $0.duration.description) })
            }
            mirror = route.mirror.map { Mirror(service: $0.service, percent: $0.percent) }
            cors = route.cors != nil ? true : nil
            upgrades = route.upgrades
        }
    }

    /// Every condition the route has; an absent key is no condition.
    struct Match: Encodable {
        var host: String?
        /// A `*.example.com` host condition's suffix.
        var hostSuffix: String?
        var prefix: String?
        var path: String?
        var regex: String?
        var methods: [String]?
        var headers: [Header]?
        var grpc: Bool?

        init(_ match: RouteMatch) {
            switch match.host {
            case .exact(let host)?: self.host = host
            case .suffix(let suffix)?: hostSuffix = suffix
            case nil: break
            }
            switch match.path {
            case .any: break
            case .prefix(let prefix): self.prefix = prefix
            case .exact(let path): self.path = path
            case .regex(let pattern): regex = pattern
            }
            methods = match.methods.isEmpty ? nil : match.methods
            headers = match.headers.isEmpty ? nil : match.headers.map(Header.init)
            grpc = match.grpc ? true : nil
        }
    }

    struct Header: Encodable {
        var name: String
        /// The value it must have, or nil when the condition is presence (`present`).
        var exact: String?
        var present: Bool?

        init(_ header: HeaderMatch) {
            name = header.name
            switch header.kind {
            case .exact(let value): exact = value
            case .present(let present): self.present = present
            }
        }
    }

    /// What the route does: `kind` says which of the other keys is there.
    struct Action: Encodable {
        /// `service`, `function`, `split`, `directResponse` or `redirect`.
        var kind: String
        var service: String?
        var function: String?
        var split: [SplitBackend]?
        var stickyOn: [String: String]?
        var directResponse: DirectResponse?
        var redirect: Redirect?

        init(_ action: RouteAction, sticky: SplitStickiness?) {
            switch action {
            case .service(let name):
                kind = "service"
                service = name
            case .function(let name):
                kind = "function"
                function = name
            case .split(let backends):
                kind = "split"
                split = backends.map(SplitBackend.init)
                switch sticky {
                case .header(let name)?: stickyOn = ["header": name]
                case .cookie(let name)?: stickyOn = ["cookie": name]
                case nil: break
                }
            case .directResponse(let response):
                kind = "directResponse"
                directResponse = DirectResponse(status: response.status, contentType: response.contentType,
                                                bodyBytes: response.body.utf8.count)
            case .redirect(let redirect):
                kind = "redirect"
                self.redirect = Redirect(status: redirect.status, scheme: redirect.scheme, host: redirect.host, port: redirect.port,
                                         path: redirect.path, prefix: redirect.prefix, stripQuery: redirect.stripQuery)
            }
        }
    }

    struct SplitBackend: Encodable {
        var service: String?
        var function: String?
        var weight: Int

        init(_ backend: WeightedBackend) {
            switch backend.backend {
            case .service(let name): service = name
            case .function(let name): function = name
            }
            weight = backend.weight
        }
    }

    struct DirectResponse: Encodable {
        var status: Int
        var contentType: String
        var bodyBytes: Int
    }

    struct Redirect: Encodable {
        var status: Int
        var scheme: String?
        var host: String?
        var port: Int?
        var path: String?
        var prefix: String?
        var stripQuery: Bool
    }

    struct Rewrite: Encodable {
        var prefix: String?
        var host: String?
    }

    struct Retries: Encodable {
        var attempts: Int
        var perTryTimeout: String?
        var retryOn: [String]
    }

    struct Fault: Encodable {
        struct Abort: Encodable {
            var percent: Double
            var status: Int
        }

        struct Delay: Encodable {
            var percent: Double
            var duration: String
        }

        var abort: Abort?
        var delay: Delay?
    }

    struct Mirror: Encodable {
        var service: String
        var percent: Double
    }
}
