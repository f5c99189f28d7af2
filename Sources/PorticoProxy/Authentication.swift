import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import PorticoAuth
import PorticoConfig
import Prometheus
import PorticoHTTP1

/// The keys of one JWKS source (a file or a URL), shared by every jwt policy that names it and
/// kept across reloads while the source stays the same.
///
/// Requests read the current table under a lock held for a pointer copy. Loading runs in
/// `KeyRefreshService`, off the event loops: jwt-kit builds keys inside an actor. A stale table, or a token
/// whose `kid` the table does not know, starts a reload in the background (at most once per
/// `minRefreshInterval` for unknown keys), and the request is answered with the keys at hand.
final class JWTKeyStore: Sendable {
    let source: JWTConfig.KeySource

    private struct State {
        var table = JWTKeyTable.empty
        var loadedAt: UInt64 = 0
        var lastAttempt: UInt64?
        var loading = false
    }

    private let state = NIOLockedValueBox(State())
    private let logger: Logger

    init(source: JWTConfig.KeySource, logger: Logger = Logger(label: "portico.jwks")) {
        self.source = source
        self.logger = logger
    }

    var isLoaded: Bool { state.withLockedValue { $0.loadedAt != 0 } }

    /// The keys in use, and whether they are older than `maxAge` (one lock).
    func table(now: UInt64, maxAge: UInt64) -> (JWTKeyTable, stale: Bool) {
        state.withLockedValue { ($0.table, now &- $0.loadedAt > maxAge) }
    }

    /// Fetches the key set and makes it current. Throws when the source cannot be read or holds
    /// no usable key; the table in use then stays as it was.
    func load() async throws {
        let document: [UInt8]
        switch source {
        case .file(let path):
            do {
                document = Array(try Data(contentsOf: URL(fileURLWithPath: path)))
            } catch {
                throw JWKSLoadError(source: source, reason: "cannot read the file")
            }
        case .url(let url):
            document = try await JWKSFetcher.fetch(url)
        }
        let table: JWTKeyTable
        do {
            table = try await JWTKeyTable.load(jwksJSON: document)
        } catch {
            throw JWKSLoadError(source: source, reason: "\(error)")
        }
        state.withLockedValue {
            $0.table = table
            $0.loadedAt = max(1, NIODeadline.now().uptimeNanoseconds)
        }
    }

    /// Called from the request path: reloads in the background when the table is older than
    /// `maxAge`, or when `unknownKey` and the last attempt is older than `minInterval`.
    func refresh(now: UInt64, maxAge: UInt64, unknownKey: Bool, minInterval: UInt64) {
        let start = state.withLockedValue { state -> Bool in
            guard !state.loading else { return false }
            let stale = now &- state.loadedAt > maxAge
            let retryUnknown = unknownKey && (state.lastAttempt.map { now &- $0 > minInterval } ?? true)
            guard stale || retryUnknown else { return false }
            // A failed source is retried no faster than the unknown-key interval.
            if let last = state.lastAttempt, now &- last < minInterval { return false }
            state.loading = true
            state.lastAttempt = now
            return true
        }
        guard start else { return }
        // `KeyRefreshService` loads it, off the event loops; `loading` keeps it queued once.
        KeyRefreshQueue.shared.enqueue(self)
    }

    /// The refresh `refresh` asked for (run by `KeyRefreshService`).
    func refreshNow() async {
        do {
            try await load()
        } catch {
            logger.warning("JWKS refresh failed; the keys at hand stay in use", metadata: ["error": "\(error)"])
        }
        state.withLockedValue { $0.loading = false }
    }
}

struct JWKSLoadError: Error, CustomStringConvertible {
    let source: JWTConfig.KeySource
    let reason: String

    var description: String {
        switch source {
        case .file(let path): return "jwks \(path): \(reason)"
        case .url(let url): return "jwksUri \(url): \(reason)"
        }
    }
}

/// One `jwt` policy, compiled: where the token is, how to check it, what to do with it after.
final class JWTPolicy: Sendable {
    let name: String
    let config: JWTConfig
    let verifier: JWTVerifier
    let keys: JWTKeyStore
    private let failureCounters: [JWTVerifier.Rejection: Counter]
    private let missingCounter: Counter?

    init(name: String, config: JWTConfig, keys: JWTKeyStore, metrics: GatewayMetrics?) {
        self.name = name
        self.config = config
        self.keys = keys
        self.verifier = JWTVerifier(issuer: config.issuer, audiences: config.audiences,
                                    clockSkewSeconds: Double(config.clockSkew.nanoseconds) / 1e9)
        var counters: [JWTVerifier.Rejection: Counter] = [:]
        if let metrics {
            for reason in JWTVerifier.Rejection.allCases {
                counters[reason] = metrics.authenticationFailureCounter(policy: name, reason: reason.rawValue)
            }
        }
        self.failureCounters = counters
        self.missingCounter = metrics?.authenticationFailureCounter(policy: name, reason: "missing")
    }

    enum Outcome {
        case noToken
        case verified(VerifiedToken)
        case rejected(JWTVerifier.Rejection)
    }

    /// Removes the headers this policy writes, so that only values it verified reach the
    /// backend, whatever the client sent and whether or not a token comes.
    func removeOutputHeaders(from headers: inout HTTPFieldList) {
        if let header = config.forwardHeader, headers.contains(named: header) { headers.removeAll(named: header) }
        for mapping in config.claimToHeaders where headers.contains(named: mapping.header) {
            headers.removeAll(named: mapping.header)
        }
    }

    /// Finds and checks this policy's token. Counts nothing: the chain decides whether the
    /// request fails (another policy may accept the token) and counts then.
    func verify(headers: HTTPFieldList, uri: String) -> Outcome {
        guard let token = token(in: headers, uri: uri) else { return .noToken }
        let now = NIODeadline.now().uptimeNanoseconds
        let maxAge = UInt64(config.cacheDuration.nanoseconds)
        let (table, stale) = keys.table(now: now, maxAge: maxAge)
        // Whole seconds are all `exp` and `nbf` have; time(2) is a vDSO call, not a Date.
        let result = verifier.verify(token, keys: table, now: Double(time(nil)))
        var unknownKey = false
        if case .failure(.unknownKey) = result { unknownKey = true }
        if stale || unknownKey {
            keys.refresh(now: now, maxAge: maxAge, unknownKey: unknownKey,
                         minInterval: UInt64(config.minRefreshInterval.nanoseconds))
        }
        switch result {
        case .failure(let reason): return .rejected(reason)
        case .success(let verified): return .verified(verified)
        }
    }

    /// The request passed with `verified`: the token leaves (unless kept: from its header, or
    /// from the query the backend gets) and the verified payload and claims are written.
    func applyVerified(_ verified: VerifiedToken, to headers: inout HTTPFieldList, query: inout String?) {
        if !config.forwardOriginalToken {
            switch config.from {
            case .header(let name, _):
                headers.removeAll(named: name)
            case .query(let parameter):
                if let current = query {
                    let kept = current.split(separator: "&", omittingEmptySubsequences: false).filter { pair in
                        pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) != parameter
                    }
                    query = kept.isEmpty ? nil : kept.joined(separator: "&")
                }
            }
        }
        if let header = config.forwardHeader {
            headers.replaceOrAppend(name: header, value: verified.encodedPayload)
        }
        for mapping in config.claimToHeaders {
            let values = verified.claims.strings(mapping.claim)
            if !values.isEmpty { headers.replaceOrAppend(name: mapping.header, value: values.joined(separator: ",")) }
        }
    }

    func countFailure(_ reason: JWTVerifier.Rejection?) {
        if let reason { failureCounters[reason]?.increment() } else { missingCounter?.increment() }
    }

    private func token(in headers: HTTPFieldList, uri: String) -> String? {
        switch config.from {
        case .header(let name, let prefix):
            guard let value = headers.firstValue(named: name) else { return nil }
            if prefix.isEmpty { return value.isEmpty ? nil : value }
            // The scheme is case-insensitive (RFC 9110 11.1): "bearer x" works as "Bearer x".
            guard value.utf8.count > prefix.utf8.count,
                  value.prefix(prefix.count).lowercased() == prefix.lowercased() else { return nil }
            let token = value.dropFirst(prefix.count).trimmingASCIISpaces()
            return token.isEmpty ? nil : String(token)
        case .query(let parameter):
            guard let questionMark = uri.firstIndex(of: "?") else { return nil }
            for pair in uri[uri.index(after: questionMark)...].split(separator: "&") {
                let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                if parts.count == 2, parts[0] == parameter, !parts[1].isEmpty {
                    return parts[1].removingPercentEncoding ?? String(parts[1])
                }
            }
            return nil
        }
    }
}

/// One `authorization` policy, compiled.
final class AuthorizationPolicy: Sendable {
    let name: String
    let rules: AuthorizationRules
    private let deniedCounter: Counter?

    init(name: String, config: AuthorizationConfig, metrics: GatewayMetrics?) {
        self.name = name
        self.rules = AuthorizationRules(rules: config.rules.map { rule in
            AuthorizationRules.Rule(
                principals: rule.principals?.map(StringPattern.init),
                requestPrincipals: rule.requestPrincipals?.map(StringPattern.init),
                methods: rule.methods,
                paths: rule.paths?.map(StringPattern.init),
                hosts: rule.hosts?.map(StringPattern.init),
                claims: rule.claims.map { ($0.name, $0.values) })
        })
        self.deniedCounter = metrics?.authorizationDeniedCounter(policy: name)
    }

    func allows(_ request: AuthorizationRules.Request) -> Bool {
        if rules.allows(request) { return true }
        deniedCounter?.increment()
        return false
    }
}
