import Logging
import NIOCore
import PorticoAuth
import PorticoConfig
import PorticoCore
import PorticoHTTP1
import PorticoRouting

/// Explains what a config snapshot would do with one request, by walking what the request path
/// walks (`ProxyHandler.startRequest`): the edge checks, the route table, the route's layers in
/// `RequestPath`'s order, the action, the backend and the exchange's settings. Nothing is sent,
/// counted or spent: layers explain themselves (`ExplainableLayer`) instead of running.
///
/// Pure apart from reading the snapshot's shared state (the JWKS in use, health and ejection),
/// so unit tests drive it on a config; the CLI (`offline`) and the admin API (the running
/// gateway's snapshot) share it.
public final class RequestExplainer: Sendable {
    let snapshot: RuntimeSnapshot
    /// Key sets that could not be loaded for this explainer, and why.
    let keyProblems: [JWTConfig.KeySource: String]
    /// True against the running gateway: health, ejection and functions are known.
    let live: Bool
    /// Offline: the functions found in the functions folder (their routes are in the snapshot).
    let functionsOnDisk: Set<String>
    private let policyLines: [String: Int]

    init(snapshot: RuntimeSnapshot, live: Bool, keyProblems: [JWTConfig.KeySource: String] = [:],
         functionsOnDisk: Set<String> = []) {
        self.snapshot = snapshot
        self.live = live
        self.keyProblems = keyProblems
        self.functionsOnDisk = functionsOnDisk
        self.policyLines = Dictionary(snapshot.config.policies.map { ($0.name, $0.location.line) },
                                      uniquingKeysWith: { first, _ in first })
    }

    /// Against the running gateway's current snapshot.
    convenience init(gateway: Gateway) {
        self.init(snapshot: gateway.snapshot, live: true)
    }

    /// For `portico explain --config`: compiles `config` as the gateway would, with the routes
    /// of the functions on disk after its own (`functionRoutes`), and loads every key set its
    /// jwt policies name. A key set that cannot be loaded (a JWKS URL out of reach) is not an
    /// error: explanations say so where a token needs it.
    public static func offline(config: GatewayConfig, functionRoutes: [RouteConfig] = [],
                               functionsOnDisk: Set<String> = []) async throws -> RequestExplainer {
        var config = config
        config.routes += functionRoutes
        var stores: [JWTConfig.KeySource: JWTKeyStore] = [:]
        var problems: [JWTConfig.KeySource: String] = [:]
        let logger = Logger(label: "portico.explain")
        for policy in config.policies {
            guard case .jwt(let jwt) = policy.kind, stores[jwt.keys] == nil else { continue }
            let store = JWTKeyStore(source: jwt.keys, logger: logger)
            do {
                try await store.load()
            } catch {
                switch jwt.keys {
                case .url(let url):
                    problems[jwt.keys] = "the CLI cannot fetch the JWKS at \(url) (\(error)); explain against the running gateway (admin POST /explain) to use its keys"
                case .file(let path):
                    problems[jwt.keys] = "the JWKS file \(path) cannot be loaded (\(error))"
                }
            }
            stores[jwt.keys] = store
        }
        let snapshot = try RuntimeSnapshot(config: config, generation: 0, keyStores: stores)
        return RequestExplainer(snapshot: snapshot, live: false, keyProblems: problems, functionsOnDisk: functionsOnDisk)
    }

    /// What the gateway would do with `request`. Throws only for a listener that is not there.
    public func explain(_ input: ExplainRequest) throws(ExplainInputError) -> Explanation {
        let listener = try listener(for: input)
        let scheme = listener.map { $0.tls != nil ? "https" : "http" } ?? input.scheme
        let head = RequestHead(method: input.method, target: input.target, version: .http1_1,
                               fields: HTTPFieldList(input.headers.map { ($0.name, $0.value) }))
        let connection = DownstreamConnectionInfo(
            scheme: scheme, listenerName: listener?.name ?? "-", clientAddress: input.clientAddress,
            protocolName: "HTTP/1.1", peer: input.peer, underscoreHeaders: listener?.headersWithUnderscores ?? .drop)
        var explanation = Explanation(
            request: Explanation.Request(
                method: input.method, url: input.url, target: input.target,
                host: input.headers.first { $0.name.lowercased() == "host" }?.value ?? "",
                listener: connection.listenerName, scheme: scheme,
                headers: input.headers.map { Explanation.Header(name: $0.name, value: $0.value) },
                clientPrincipal: input.peer?.principal),
            edge: [], routes: [], layers: [],
            result: Explanation.Result(action: "forward", by: "route", reason: ""), notes: [])
        if !live {
            explanation.notes.append("explained from the config file: health, ejection and function workers are known only to the running gateway (admin POST /explain)")
        }

        // The edge checks, the very list the request path runs.
        var edge = EdgeRequest(head: head, connection: connection)
        for check in snapshot.requestPath.edge {
            let name = Self.edgeCheckName(check)
            switch check.check(&edge) {
            case .pass:
                explanation.edge.append(Explanation.EdgeStep(check: name, passed: true))
            case .reject(let reply, _):
                let reason = Self.edgeReason(name: name, reply: reply, head: head)
                explanation.edge.append(Explanation.EdgeStep(check: name, passed: false, status: reply.statusCode, reason: reason))
                explanation.result = Explanation.Result(action: "refuse", status: reply.statusCode, by: "edge", reason: reason)
                return explanation
            }
        }
        guard let target = edge.target else {
            explanation.result = Explanation.Result(action: "refuse", status: 400, by: "edge", reason: "the target was not normalized")
            return explanation
        }
        let authority = edge.authority
        explanation.request.host = authority
        explanation.normalizedPath = target.path
        explanation.query = target.query

        // The route table, route by route.
        let view = RoutedRequestView(head: edge.head, authority: authority, normalizedPath: target.path)
        let trace = snapshot.routeTable.explain(view)
        explanation.routes = trace.trials.map(Self.routeStep)
        guard let matched = trace.matched else {
            explanation.result = Explanation.Result(action: "refuse", status: LocalReply.noRoute.statusCode, by: "routing",
                                                    reason: "no route matches")
            return explanation
        }
        let route = matched.route
        explanation.route = Self.reference(route)

        // The route's layers, in `RequestPath`'s order.
        var request = LayerRequest(
            head: edge.head, query: target.query, path: target.path, authority: authority, requestID: "explain",
            hadRequestID: edge.head.fields.contains("x-request-id"), connection: connection, random: FastRandom())
        let context = ExplainContext(route: route.config, policyLines: policyLines, keyProblems: keyProblems)
        var stopped: Explanation.Result?
        for layer in snapshot.requestPath.layers(listener: connection.listenerName, route: matched.index) {
            var step = Self.explain(layer, &request, context)
            step.reached = stopped == nil
            if stopped == nil, step.decision == "reject" || step.decision == "answer" {
                stopped = Explanation.Result(action: step.decision == "answer" ? "answer" : "refuse", status: step.status,
                                             by: step.layer, reason: step.reason ?? "")
            }
            explanation.layers.append(step)
        }
        for layer in snapshot.requestPath.ending {
            explanation.layers.append(Self.explain(layer, &request, context))
        }

        // The route's action.
        switch route.config.action {
        case .directResponse(let direct):
            explanation.directResponse = Explanation.DirectResponse(
                status: direct.status, contentType: direct.contentType, bodyBytes: direct.body.utf8.count)
            explanation.result = stopped ?? Explanation.Result(
                action: "direct", status: direct.status, by: "route", reason: "the route answers \(direct.status) itself")
            return explanation
        case .redirect(let redirect):
            let location = snapshot.routeTable.redirectLocation(
                redirect, matched: matched, scheme: connection.scheme, authority: authority,
                normalizedPath: target.path, query: request.query)
            explanation.redirect = Explanation.Redirect(status: redirect.status, location: location)
            explanation.result = stopped ?? Explanation.Result(
                action: "redirect", status: redirect.status, by: "route", reason: "redirected to \(location)")
            return explanation
        case .service, .function, .split:
            break
        }

        explanation.rewrite = Explanation.Rewrite(
            upstreamPath: snapshot.routeTable.upstreamPath(for: matched, normalizedPath: target.path, query: request.query),
            prefix: route.config.rewrite?.prefix, host: route.config.rewrite?.host)
        let backend = self.backend(route: route, view: RoutedRequestView(
            head: request.head, authority: authority, normalizedPath: target.path))
        explanation.backend = backend
        explanation.exchange = exchange(route: route.config, backend: backend, head: request.head)
        if let stopped {
            explanation.result = stopped
        } else if let missing = backend.targets.first(where: { !$0.exists }), backend.targets.count == 1 || backend.split?.chosen != nil {
            explanation.result = Explanation.Result(
                action: "refuse", status: LocalReply.noBackend.statusCode, by: "backend",
                reason: "\(missing.kind) \(missing.name) is not there")
        } else {
            let names = backend.targets.map { "\($0.kind) \($0.name)" }.joined(separator: " or ")
            explanation.result = Explanation.Result(action: "forward", by: "route", reason: "sent to \(names)")
        }
        return explanation
    }

    /// The functions an explanation sends to, whose workers only their home loops know: the
    /// admin API fetches their status and hands it to `attach`.
    func functionNames(in explanation: Explanation) -> [String] {
        explanation.backend?.targets.filter { $0.kind == "function" && $0.exists }.map(\.name) ?? []
    }

    /// Fills in a function's revision and workers from its status.
    static func attach(_ status: FunctionStatus, to explanation: inout Explanation) {
        guard let targets = explanation.backend?.targets else { return }
        for index in targets.indices where targets[index].kind == "function" && targets[index].name == status.name {
            let warm = status.workers.filter { $0.state == "ready" }.count
            var function = targets[index].function ?? Explanation.Function(choice: "")
            function.revision = status.revision
            function.mode = status.mode
            function.state = status.state
            function.workers = status.workers.count
            function.warmWorkers = warm
            if status.mode == "exec" {
                function.choice = "exec mode: a process is started for the request"
            } else if warm > 0 {
                function.choice = "a warm worker of revision \(status.revision) takes it (\(warm) ready)"
            } else {
                function.choice = "no worker is ready: the request waits for a cold start of revision \(status.revision)"
            }
            explanation.backend?.targets[index].function = function
        }
    }

    // MARK: - Parts

    private func listener(for input: ExplainRequest) throws(ExplainInputError) -> ListenerConfig? {
        let listeners = snapshot.config.listeners
        if let name = input.listener {
            guard let found = listeners.first(where: { $0.name == name }) else {
                throw ExplainInputError("no listener named '\(name)' (listeners: \(listeners.map(\.name).joined(separator: ", ")))")
            }
            return found
        }
        if let port = input.port, let found = listeners.first(where: { $0.address.port == port }) { return found }
        let wantsTLS = input.scheme == "https"
        return listeners.first { ($0.tls != nil) == wantsTLS } ?? listeners.first
    }

    private static func explain(_ layer: any RequestLayer, _ request: inout LayerRequest,
                                _ context: ExplainContext) -> Explanation.Layer {
        if let explainable = layer as? any ExplainableLayer { return explainable.explain(&request, context: context) }
        return Explanation.Layer(layer: String(describing: type(of: layer)), reason: "no explanation for this layer")
    }

    static func edgeCheckName(_ check: any EdgeCheck) -> String {
        switch check {
        case is HeaderSizeCheck: return "header-size"
        case is HostFieldCheck: return "host"
        case is FramingCheck: return "framing"
        case is UnderscoreNameCheck: return "underscore-names"
        case is BodySizeCheck: return "body-size"
        case is PathCheck: return "path"
        case is AuthorityCheck: return "authority"
        default: return String(describing: type(of: check))
        }
    }

    private static func edgeReason(name: String, reply: LocalReply, head: RequestHead) -> String {
        switch name {
        case "path":
            if case .failure(let error) = PathNormalizer.normalize(head.target, method: head.method) { return error.description }
            return "the request target is refused"
        case "header-size": return "the request line and headers are over limits.maxRequestHeaders"
        case "host": return "more than one Host header, or one that is not host[:port]"
        case "framing": return "the body's framing (Content-Length, Transfer-Encoding) cannot be read one way only"
        case "underscore-names": return "a header name with '_' that the listener refuses"
        case "body-size": return "Content-Length is over limits.maxRequestBody"
        case "authority": return "no Host, or an absolute-form target with an invalid authority"
        default: return "refused (\(reply))"
        }
    }

    static func reference(_ route: CompiledRoute) -> Explanation.RouteReference {
        Explanation.RouteReference(index: route.index, name: route.config.name, file: route.config.location.file,
                                   line: route.config.location.line)
    }

    private static func routeStep(_ trial: RouteTrace.Trial) -> Explanation.RouteStep {
        let config = trial.route.config
        var step = Explanation.RouteStep(
            index: trial.route.index, name: config.name, file: config.location.file, line: config.location.line,
            outcome: "", shadowedBy: trial.shadowedBy.map(reference), match: RouteTable.describeMatch(config.match))
        switch trial.outcome {
        case .failed(let mismatch):
            step.outcome = "failed"
            step.failedCondition = mismatch.condition
            step.reason = mismatch.description
        case .matched:
            step.outcome = "matched"
        case .notReached(let wouldMatch):
            step.outcome = "notReached"
            step.wouldMatch = wouldMatch
        }
        return step
    }

    private func backend(route: CompiledRoute, view: RoutedRequestView) -> Explanation.Backend {
        switch route.config.action {
        case .service(let name):
            return Explanation.Backend(kind: "service", targets: [target(.service(name))])
        case .function(let name):
            return Explanation.Backend(kind: "function", targets: [target(.function(name))])
        case .split(let backends):
            let total = backends.reduce(0) { $0 + max($1.weight, 0) }
            let sides = backends.map { side in
                Explanation.Split.Side(backend: side.backend.description, weight: side.weight,
                                       percent: total == 0 ? 0 : (Double(max(side.weight, 0)) * 1000 / Double(total)).rounded() / 10)
            }
            var split = Explanation.Split(sides: sides, reason: "")
            switch route.config.splitStickyOn {
            case .header(let name)?: split.stickyOn = "header \(name)"
            case .cookie(let name)?: split.stickyOn = "cookie \(name)"
            case nil: break
            }
            var chosen: BackendReference?
            let weighted = backends.filter { $0.weight > 0 }
            if let hash = route.stickyHash(of: view) {
                chosen = route.backend(draw: hash)
                split.reason = "sticky on \(split.stickyOn ?? "a value"): this request's value always lands on \(chosen?.description ?? "-")"
            } else if weighted.count == 1 {
                chosen = weighted[0].backend
                split.reason = "only \(chosen!.description) has a weight above 0"
            } else {
                split.reason = (split.stickyOn.map { "the request has no \($0): " } ?? "")
                    + "drawn at random per request, by weight ("
                    + sides.map { "\($0.backend) \(Explanation.number($0.percent))%" }.joined(separator: ", ") + ")"
            }
            split.chosen = chosen?.description
            let targets = chosen.map { [target($0)] } ?? backends.map { target($0.backend) }
            return Explanation.Backend(kind: "split", split: split, targets: targets)
        case .directResponse, .redirect:
            return Explanation.Backend(kind: "none", targets: [])
        }
    }

    private func target(_ reference: BackendReference) -> Explanation.Target {
        switch reference {
        case .service(let name):
            guard let service = snapshot.servicesByName[name] else {
                return Explanation.Target(kind: "service", name: name, exists: false)
            }
            return Explanation.Target(kind: "service", name: name, exists: true, service: explainService(service))
        case .function(let name):
            if live {
                guard let function = snapshot.functions[name] else {
                    return Explanation.Target(kind: "function", name: name, exists: false)
                }
                let exec: Bool
                switch function.serving {
                case .responder: exec = true
                case .backend: exec = false
                }
                return Explanation.Target(kind: "function", name: name, exists: true, function: Explanation.Function(
                    revision: function.revision, mode: exec ? "exec" : "http",
                    choice: exec ? "exec mode: a process is started for the request" : "a worker of revision \(function.revision)"))
            }
            let onDisk = functionsOnDisk.contains(name)
            return Explanation.Target(kind: "function", name: name, exists: onDisk, function: Explanation.Function(
                choice: onDisk ? "deployed from the functions folder; whether a worker is warm is known only to the running gateway"
                    : "not in the functions folder: 503 until it is deployed"))
        }
    }

    private func explainService(_ service: ServiceConfig) -> Explanation.Service {
        let states = live ? snapshot.serviceHealth[service.name]?.endpointStates() : nil
        let availability = live ? snapshot.serviceHealth[service.name]?.availability : nil
        let endpoints = service.endpoints.enumerated().map { index, endpoint in
            Explanation.Service.Endpoint(
                address: endpoint.description,
                healthy: service.healthCheck != nil ? states?[index].healthy : nil,
                ejected: service.outlierDetection != nil ? states.map { $0[index].ejectedForSeconds != nil } : nil,
                available: availability?[index])
        }
        let usable = service.endpoints.indices.filter { availability?[$0] ?? true }
        let choice: String
        if usable.isEmpty {
            choice = "no endpoint is available (all ejected or unhealthy): the \(service.loadBalancer.rawValue) pick is used anyway"
        } else if usable.count == 1 {
            choice = "\(service.endpoints[usable[0]]), the only \(availability == nil ? "endpoint" : "available endpoint")"
        } else {
            let among = "\(usable.count) \(availability == nil ? "" : "available ")endpoints"
            switch service.loadBalancer {
            case .roundRobin:
                choice = "round_robin over \(among): each event loop keeps its own turn, so this request may get any of them"
            case .leastRequest:
                choice = "least_request over \(among): two drawn at random, the one with fewer requests in flight"
            case .random:
                choice = "random over \(among)"
            }
        }
        return Explanation.Service(
            loadBalancer: service.loadBalancer.rawValue, protocol: service.protocol.rawValue, tls: service.tls != nil,
            connectTimeout: service.connectTimeout.description, endpoints: endpoints, choice: choice)
    }

    private func exchange(route: RouteConfig, backend: Explanation.Backend, head: RequestHead) -> Explanation.Exchange {
        var exchange = Explanation.Exchange(timeout: route.timeout.description)
        // As `startRequest` does: a gRPC client's deadline replaces a later route timeout.
        if let contentType = head.fields.firstValue(of: "content-type"), GRPCContentType.isGRPC(contentType),
           let value = head.fields.firstValue(of: "grpc-timeout"), let deadline = GRPCStatus.timeoutNanoseconds(value),
           deadline < route.timeout.nanoseconds {
            exchange.timeout = ConfigDuration(nanoseconds: deadline).description
            exchange.grpcTimeout = value
        }
        if let retries = route.retries {
            exchange.retries = Explanation.Exchange.Retries(
                attempts: retries.attempts, retryOn: retries.retryOn.map(\.rawValue),
                perTryTimeout: retries.perTryTimeout?.description, replayBuffer: retries.replayBuffer)
            // Each backend's own budget (a function's requests share the default one): for a
            // split that draws, whichever side the request lands on.
            exchange.retryBudgets = backend.targets.map { target in
                let budget = snapshot.servicesByName[target.name].flatMap { target.kind == "service" ? $0.retryBudget : nil }
                    ?? RetryBudgetConfig()
                return Explanation.Exchange.RetryBudget(
                    service: target.kind == "service" ? target.name : "function:" + target.name, percent: budget.percent,
                    interval: budget.interval.description, minRetriesPerSecond: budget.minRetriesPerSecond,
                    minRetries: budget.minRetries)
            }
        }
        if let mirror = route.mirror {
            exchange.mirror = Explanation.Exchange.Mirror(service: mirror.service, percent: mirror.percent)
        }
        return exchange
    }
}
