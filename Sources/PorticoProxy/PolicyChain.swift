import NIOCore
import PorticoAuth
import PorticoConfig
import PorticoCore
import PorticoHTTP1

/// The request policies a listener or a route names, compiled with its config snapshot and
/// sorted by kind, in the order the policy names them.
struct PolicySet {
    var authentication: [JWTPolicy] = []
    var authorization: [AuthorizationPolicy] = []
    var rateLimiters: [RateLimiter] = []

    var isEmpty: Bool { authentication.isEmpty && authorization.isEmpty && rateLimiters.isEmpty }
}

/// The policies of one route, compiled with its config snapshot.
struct RoutePolicies {
    /// The route's own `policies:`.
    let named: PolicySet
    let fault: FaultConfig?
    let retries: CompiledRetries?
    let requestHeaders: RequestHeadersPolicy?
    let responseHeaders: ResponseHeadersPolicy?
}

/// A route's `retries`, ready for the request path.
struct CompiledRetries {
    let rules: RetryRules
    let perTryTimeout: TimeAmount?
    let replayBuffer: Int

    init(_ config: RetryConfig) {
        var conditions: RetryRules.Conditions = []
        for condition in config.retryOn {
            switch condition {
            case .serverError: conditions.insert(.serverError)
            case .gatewayError: conditions.insert(.gatewayError)
            case .connectFailure: conditions.insert(.connectFailure)
            case .reset: conditions.insert(.reset)
            case .retriable4xx: conditions.insert(.retriable4xx)
            case .refusedStream: conditions.insert(.refusedStream)
            }
        }
        rules = RetryRules(retries: config.attempts, conditions: conditions)
        perTryTimeout = config.perTryTimeout.map { .nanoseconds($0.nanoseconds) }
        replayBuffer = config.replayBuffer
    }
}

/// What the policy chain decided for a request.
enum PolicyVerdict {
    /// Forward it, after `delay` when fault injection chose to delay it.
    case proceed(delay: TimeAmount?)
    /// Answer it now with `status` (and `headers`); `backend` labels metrics and the access log.
    case reject(status: HTTPStatus, headers: [(String, String)], backend: String)
}

/// What the policy chain knows about a request beyond its headers.
struct PolicyRequest {
    let listener: String
    let clientAddress: String
    /// The verified client-certificate identity, if the connection has one.
    let principal: String?
    let method: String
    let uri: String
    let path: String
    let host: String
}

extension RuntimeSnapshot {
    /// The compiled policies of the route at `index` in match order, if it has any.
    func policies(ofRoute index: Int) -> RoutePolicies? {
        index < routePolicies.count ? routePolicies[index] : nil
    }

    /// The request path's policy chain, assembled here and nowhere else. The listener's
    /// policies of a kind run before the route's (a policy both name runs once). In order:
    ///
    /// 1. Authentication (`jwt`): who is asking. Missing or bad token: 401 with
    ///    `WWW-Authenticate: Bearer`, and no detail of why (that goes to metrics).
    /// 2. Authorization: may they. Sees the mTLS principal and the verified claims. 403.
    ///    Identity comes first, as in Envoy's and Istio's chains, so rules can use it.
    /// 3. Rate limits: after identity, so a request refused as unknown does not spend a token
    ///    of a client that is known.
    /// 4. Fault injection, last, just before the backend is chosen (as Envoy's fault filter
    ///    sits just before the router): a fault only hits requests that would have been served.
    ///    When both the delay and the abort draw hit, the abort is answered at once.
    ///
    /// `headers` and `query` are the request's, edited for the backend (a verified token
    /// removed, claims added).
    func evaluatePolicies(route index: Int, request: PolicyRequest, headers: inout HTTPFieldList, query: inout String?,
                          random: inout FastRandom) -> PolicyVerdict {
        let listenerSet = listenerPolicies.isEmpty ? nil : listenerPolicies[request.listener]
        let route = index < routePolicies.count ? routePolicies[index] : nil
        guard listenerSet != nil || route != nil else { return .proceed(delay: nil) }
        let listener = listenerSet ?? PolicySet()
        let named = route?.named ?? PolicySet()

        var token: VerifiedToken?
        if !listener.authentication.isEmpty || !named.authentication.isEmpty {
            switch Self.authenticate(listener.authentication, named.authentication, uri: request.uri, headers: &headers,
                                     query: &query) {
            case .success(let verified): token = verified
            case .failure: return .reject(status: .unauthorized, headers: [("www-authenticate", "Bearer")], backend: "authn")
            }
        }
        if !listener.authorization.isEmpty || !named.authorization.isEmpty {
            let attributes = AuthorizationRules.Request(principal: request.principal, token: token, method: request.method,
                                                        path: request.path, host: request.host)
            for policy in listener.authorization where !policy.allows(attributes) {
                return .reject(status: .forbidden, headers: [], backend: "authz")
            }
            for policy in named.authorization where !listener.authorization.contains(where: { $0 === policy }) {
                if !policy.allows(attributes) { return .reject(status: .forbidden, headers: [], backend: "authz") }
            }
        }

        let now = NIODeadline.now().uptimeNanoseconds
        for limiter in listener.rateLimiters {
            if let rejection = Self.apply(limiter, clientAddress: request.clientAddress, headers: headers, now: now) {
                return rejection
            }
        }
        guard let route else { return .proceed(delay: nil) }
        for limiter in named.rateLimiters where !listener.rateLimiters.contains(where: { $0 === limiter }) {
            if let rejection = Self.apply(limiter, clientAddress: request.clientAddress, headers: headers, now: now) {
                return rejection
            }
        }

        guard let fault = route.fault else { return .proceed(delay: nil) }
        var delay: TimeAmount?
        if let configured = fault.delay, random.percentDraw() < configured.percent {
            delay = .nanoseconds(configured.duration.nanoseconds)
        }
        if let abort = fault.abort, random.percentDraw() < abort.percent {
            return .reject(status: HTTPStatus(statusCode: abort.status), headers: [], backend: "fault")
        }
        return .proceed(delay: delay)
    }

    private struct AuthenticationFailed: Error {}

    /// The jwt policies of the listener and the route, as Istio treats several
    /// RequestAuthentications: a token any one of them verifies is accepted (issuers differ, so
    /// in practice the token's issuer picks its policy). A token none accepts: 401. No token:
    /// 401 unless every policy is `optional`. Failures are counted only when the request fails.
    private static func authenticate(_ first: [JWTPolicy], _ second: [JWTPolicy], uri: String, headers: inout HTTPFieldList,
                                     query: inout String?) -> Result<VerifiedToken?, AuthenticationFailed> {
        func each(_ body: (JWTPolicy) -> Void) {
            for policy in first { body(policy) }
            for policy in second where !first.contains(where: { $0 === policy }) { body(policy) }
        }
        each { $0.removeOutputHeaders(from: &headers) }
        var accepted: (JWTPolicy, VerifiedToken)?
        var failures: [(JWTPolicy, JWTVerifier.Rejection?)] = []
        var required = false
        let snapshot = headers
        each { policy in
            guard accepted == nil else { return }
            switch policy.verify(headers: snapshot, uri: uri) {
            case .verified(let verified): accepted = (policy, verified)
            case .rejected(let reason): failures.append((policy, reason))
            case .noToken: if !policy.config.optional { required = true; failures.append((policy, nil)) }
            }
        }
        if let (policy, verified) = accepted {
            policy.applyVerified(verified, to: &headers, query: &query)
            return .success(verified)
        }
        // A token that was there and failed fails the request even where policies are optional.
        let tokenFailed = failures.contains { $0.1 != nil }
        guard tokenFailed || required else { return .success(nil) }
        for (policy, reason) in failures { policy.countFailure(reason) }
        return .failure(AuthenticationFailed())
    }

    private static func apply(_ limiter: RateLimiter, clientAddress: String, headers: HTTPFieldList,
                              now: UInt64) -> PolicyVerdict? {
        let key = limiter.key(clientAddress: clientAddress, headers: headers)
        guard case .limited(let wait) = limiter.take(key: key, now: Int64(truncatingIfNeeded: now)) else { return nil }
        // Whole seconds, rounded up (RFC 9110 10.2.3): "0" would invite an immediate retry.
        let seconds = max(1, wait / 1_000_000_000 + (wait % 1_000_000_000 == 0 ? 0 : 1))
        return .reject(status: .tooManyRequests, headers: [("retry-after", String(seconds))], backend: "rate_limit")
    }
}

extension FastRandom {
    /// A uniform draw from [0, 100).
    mutating func percentDraw() -> Double {
        unitDraw() * 100
    }

    /// A uniform draw from [0, 1).
    mutating func unitDraw() -> Double {
        Double(next() >> 11) * 0x1p-53
    }
}
