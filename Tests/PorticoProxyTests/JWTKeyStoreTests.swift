import Foundation
import JWTTestSupport
import Logging
import NIOCore
import PorticoConfig
import XCTest

@testable import PorticoProxy

/// When a key set is fetched again: stale, or asked for an unknown kid, never more often than
/// the minimum interval, and a failed fetch keeps the keys in use.
final class JWTKeyStoreTests: XCTestCase {
    private var file: URL!
    private var mint: TokenMint!

    override func setUp() async throws {
        file = FileManager.default.temporaryDirectory.appendingPathComponent("jwks-\(UUID().uuidString).json")
        mint = TokenMint()
        try await mint.addKey(kid: "one", algorithm: "ES256")
        try mint.jwks().write(to: file, atomically: true, encoding: .utf8)
    }

    override func tearDown() {
        try? FileManager.default.removeItem(at: file)
    }

    private func publish(_ kid: String) async throws {
        try await mint.addKey(kid: kid, algorithm: "ES256")
        try mint.jwks().write(to: file, atomically: true, encoding: .utf8)
    }

    /// Whether the store has `kid` within `seconds` (generous by default: it costs nothing when
    /// the key comes, and a busy machine runs the background fetch late).
    private func knows(_ store: JWTKeyStore, _ kid: String, within seconds: TimeInterval = 20) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        repeat {
            if store.table(now: 0, maxAge: .max).0.contains(keyID: kid) { return true }
            usleep(10_000)
        } while Date() < deadline
        return false
    }

    /// Runs `body` with a `KeyRefreshService` working off refreshes, as the gateway runs one.
    private func withRefreshService(_ body: () async throws -> Void) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await KeyRefreshService().run() }
            defer { group.cancelAll() }
            try await body()
        }
    }

    func testUnknownKidRefetchesAtMostOncePerInterval() async throws {
        try await withRefreshService { try await unknownKidRefetchesAtMostOncePerInterval() }
    }

    func testStaleKeysAreRefetchedAndAFailedFetchKeepsTheOldOnes() async throws {
        try await withRefreshService { try await staleKeysAreRefetchedAndAFailedFetchKeepsTheOldOnes() }
    }

    private func unknownKidRefetchesAtMostOncePerInterval() async throws {
        let store = JWTKeyStore(source: .file(file.path))
        try await store.load()
        XCTAssertTrue(knows(store, "one", within: 0))
        let second: UInt64 = 1_000_000_000
        let hour = 3600 * second

        try await publish("two")
        store.refresh(now: 10 * second, maxAge: hour, unknownKey: true, minInterval: 5 * second)
        XCTAssertTrue(knows(store, "two"), "an unknown kid fetches the set again")

        try await publish("three")
        store.refresh(now: 12 * second, maxAge: hour, unknownKey: true, minInterval: 5 * second)
        XCTAssertFalse(knows(store, "three", within: 0.5), "not again within the minimum interval")

        store.refresh(now: 16 * second, maxAge: hour, unknownKey: true, minInterval: 5 * second)
        XCTAssertTrue(knows(store, "three"), "again once the interval has passed")
    }

    private func staleKeysAreRefetchedAndAFailedFetchKeepsTheOldOnes() async throws {
        let log = CapturedLog()
        let store = JWTKeyStore(source: .file(file.path), logger: Logger(label: "jwks-test") { _ in CapturingLogHandler(log: log) })
        try await store.load()
        let now = NIODeadline.now().uptimeNanoseconds
        XCTAssertFalse(store.table(now: now, maxAge: 60_000_000_000).stale)
        XCTAssertTrue(store.table(now: now + 61_000_000_000, maxAge: 60_000_000_000).stale)

        try "{ not json".write(to: file, atomically: true, encoding: .utf8)
        store.refresh(now: now + 61_000_000_000, maxAge: 60_000_000_000, unknownKey: false, minInterval: 1_000_000_000)
        // The fetch runs in the background: the check means something only once it failed (a
        // fixed sleep could let it pass before the fetch on a busy machine).
        XCTAssertTrue(log.waitFor("JWKS refresh failed", timeout: 20), "the background fetch of the broken file ran")
        XCTAssertTrue(store.table(now: 0, maxAge: .max).0.contains(keyID: "one"), "a broken file does not empty the set")
        do {
            try await store.load()
            XCTFail("a broken file is an error when loaded directly")
        } catch {
            XCTAssertTrue("\(error)".contains("jwks"), "\(error)")
        }
    }
}
