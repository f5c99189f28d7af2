import PorticoCore
import PorticoHTTP1
@testable import PorticoProxy
import XCTest

/// The one map from a failure to what the client gets.
final class LocalReplyTests: XCTestCase {
    func testEveryFailureHasItsStatusHeadersAndBody() {
        let table: [(LocalReply, Int, String?, String)] = [
            (.malformedRequest, 400, nil, "bad request\n"),
            (.headersTooLarge, 431, nil, "request headers too large\n"),
            (.bodyTooLarge, 413, nil, "request body too large\n"),
            (.unsupportedTransferCoding, 501, nil, "not implemented\n"),
            (.noRoute, 404, nil, "not found\n"),
            (.noBackend, 503, nil, "service unavailable\n"),
            (.upstreamConnectFailed, 502, nil, "upstream unavailable\n"),
            (.upstreamReset, 502, nil, "upstream unavailable\n"),
            (.upstreamTimeout, 504, nil, "upstream timed out\n"),
            (.breakerOpen, 503, nil, "service unavailable\n"),
            (.overloaded, 503, "1", "service unavailable\n"),
            (.draining, 503, "1", "service unavailable\n"),
            (.workerStartTimeout, 504, nil, "upstream timed out\n"),
            (.workerStartFailed, 502, nil, "upstream unavailable\n"),
            (.functionFailed, 502, nil, "upstream unavailable\n"),
        ]
        for (reply, status, retryAfter, body) in table {
            XCTAssertEqual(reply.status.code, status, "\(reply)")
            XCTAssertEqual(reply.headers.first { $0.0 == "retry-after" }?.1, retryAfter, "\(reply)")
            XCTAssertEqual(reply.body, body, "\(reply)")
        }
    }

    func testFramingErrorsAndBackendFailuresMapToReplies() {
        XCTAssertEqual(LocalReply(FramingError.unsupportedTransferCoding), .unsupportedTransferCoding)
        XCTAssertEqual(LocalReply(FramingError.conflictingContentLengths), .malformedRequest)
        XCTAssertEqual(LocalReply(BackendUnavailable.queueFull), .overloaded)
        XCTAssertEqual(LocalReply(BackendUnavailable.startupTimeout), .workerStartTimeout)
        XCTAssertEqual(LocalReply(BackendUnavailable.draining), .draining)
        XCTAssertEqual(LocalReply(BackendUnavailable.crashLooping), .workerStartFailed)
    }
}
