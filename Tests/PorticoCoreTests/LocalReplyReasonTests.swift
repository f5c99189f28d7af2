import PorticoCore
import XCTest

/// The reasons' names are label values and log values: stable, unique, snake_case; and every
/// failure reply has the reason operators would look for.
final class LocalReplyReasonTests: XCTestCase {
    func testNamesAreUniqueSnakeCase() {
        let names = LocalReplyReason.allCases.map(\.name)
        XCTAssertEqual(Set(names).count, names.count, "\(names)")
        for name in names {
            XCTAssertTrue(name.allSatisfy { ("a"..."z").contains($0) || $0 == "_" }, name)
            XCTAssertFalse(name.hasPrefix("_") || name.hasSuffix("_"), name)
        }
    }

    func testEveryReplyMapsToItsReason() {
        let table: [(LocalReply, String)] = [
            (.malformedRequest, "bad_request"),
            (.headersTooLarge, "headers_too_large"),
            (.bodyTooLarge, "body_too_large"),
            (.unsupportedTransferCoding, "unsupported_transfer_coding"),
            (.noRoute, "no_route"),
            (.noBackend, "no_backend"),
            (.upstreamConnectFailed, "upstream_connect_failed"),
            (.upstreamReset, "upstream_reset"),
            (.upstreamTimeout, "upstream_timeout"),
            (.breakerOpen, "breaker_open"),
            (.overloaded, "queue_full"),
            (.draining, "draining"),
            (.workerStartTimeout, "worker_start_timeout"),
            (.workerStartFailed, "worker_start_failed"),
            (.functionFailed, "function_failed"),
        ]
        for (reply, name) in table {
            XCTAssertEqual(reply.reason.name, name, "\(reply)")
        }
    }

    func testTheIssuesReasonsAreAllThere() {
        let names = Set(LocalReplyReason.allCases.map(\.name))
        for name in ["no_route", "jwt_missing", "jwt_invalid", "authz_denied", "rate_limited", "fault", "queue_full",
                     "breaker_open", "upstream_connect_failed", "upstream_reset", "upstream_timeout", "worker_start_failed",
                     "body_too_large", "bad_request"] {
            XCTAssertTrue(names.contains(name), name)
        }
    }
}
