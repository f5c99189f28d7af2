import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import PorticoAuth
import PorticoConfig
import Prometheus
import PorticoHTTP1

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
            guard !values.isEmpty else { continue }
            let value = values.joined(separator: ",")
            // A claim is the issuer's text, not checked as a field value: one with a control
            // byte (or edge whitespace) is left out rather than refused by the upstream writer
            // after the request was routed, which would count as the endpoint's failure.
            guard HTTPFieldList.isValidValue(value.utf8) else { continue }
            headers.replaceOrAppend(name: mapping.header, value: value)
        }
    }

    func countFailure(_ reason: JWTVerifier.Rejection?) {
        if let reason { failureCounters[reason]?.increment() } else { missingCounter?.increment() }
    }

    func token(in headers: HTTPFieldList, uri: String) -> String? {
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
