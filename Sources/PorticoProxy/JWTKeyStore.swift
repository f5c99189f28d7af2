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
