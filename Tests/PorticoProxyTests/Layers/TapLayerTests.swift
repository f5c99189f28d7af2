import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOEmbedded
import PorticoConfig
import PorticoCore
import PorticoHTTP1
@testable import PorticoProxy
import XCTest

/// The tap's shell on one event loop (`TapLayer`, `LoopTap`): what is written for which request,
/// when batches are handed over, and what is dropped, with the loop's clock moved by hand.
final class TapLayerTests: XCTestCase {
    private let loop = EmbeddedEventLoop()
    private var context: LoopContext!
    private let batches = NIOLockedValueBox<[(text: String, lines: Int, dropped: Int)]>([])

    override func setUpWithError() throws {
        let snapshot = try RuntimeSnapshot(config: GatewayConfig(
            sourceFile: "test.yaml",
            listeners: [ListenerConfig(name: "public", address: HostPort(host: "127.0.0.1", port: 0))],
            admin: nil, limits: LimitsConfig(), services: [], routes: []), generation: 1)
        context = LoopContext(eventLoop: loop, loopIndex: 0, snapshot: snapshot, metrics: GatewayMetrics(), accessLogWriter: nil)
    }

    private var sink: TapSink {
        let batches = self.batches
        return TapSink(eventLoop: loop) { buffer, lines, dropped in
            batches.withLockedValue { $0.append((String(buffer: buffer), lines, dropped)) }
        }
    }

    private func end(route: String, status: Int, path: String = "/x", upstream: HostPort? = HostPort(host: "10.0.0.7", port: 8080),
                     fields: HTTPFieldList = HTTPFieldList(), trace: RequestTrace? = nil,
                     localReply: LocalReplyReason? = nil) {
        let ending = ExchangeEnding(
            record: RequestRecord(route: route, backend: "svc", requestID: "rid-1", started: .now()),
            method: "GET", target: path, status: status, bytesIn: 0, bytesOut: 0, upstream: upstream,
            elapsedNanoseconds: 1_500_000,
            connection: DownstreamConnectionInfo(scheme: "http", listenerName: "public", clientAddress: "10.0.0.1", protocolName: "HTTP/1.1"),
            loop: context, grpcStatus: nil, coldStart: nil, retries: 2, requestFields: fields,
            localReply: localReply, trace: trace)
        TapLayer().exchangeEnded(ending)
    }

    private func objects(_ text: String) throws -> [[String: Any]] {
        try text.components(separatedBy: "\n\n").filter { !$0.isEmpty }.map { event in
            XCTAssertTrue(event.hasPrefix("data: "), event)
            return try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(event.dropFirst(6).utf8)) as? [String: Any])
        }
    }

    func testWithoutTapsNothingIsWrittenOrScheduled() {
        XCTAssertFalse(context.tap.hasSubscribers)
        end(route: "api", status: 503)
        loop.advanceTime(by: .seconds(1))
        XCTAssertTrue(batches.withLockedValue { $0.isEmpty })
    }

    func testMatchingRequestsAreBatchedAndHandedOverAfterTheInterval() throws {
        context.tap.add(id: 1, filter: TapFilter(route: "api", statuses: [500...599]), prefix: "data: ", sink: sink)
        let traceparent = HTTPFieldList([("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")])
        end(route: "api", status: 503, path: "/a/\"quoted\"", fields: traceparent)
        end(route: "api", status: 200)
        end(route: "other", status: 503)
        end(route: "api", status: 502, upstream: nil, localReply: .upstreamConnectFailed)
        loop.advanceTime(by: .milliseconds(49))
        XCTAssertTrue(batches.withLockedValue { $0.isEmpty }, "handed over once the interval has passed")
        loop.advanceTime(by: .milliseconds(1))
        let handed = batches.withLockedValue { $0 }
        XCTAssertEqual(handed.count, 1)
        XCTAssertEqual(handed.first?.lines, 2)
        XCTAssertEqual(handed.first?.dropped, 0)
        let lines = try objects(handed.first?.text ?? "")
        XCTAssertEqual(lines.map { $0["status"] as? Int }, [503, 502])
        XCTAssertEqual(lines[0]["path"] as? String, "/a/\"quoted\"")
        XCTAssertEqual(lines[0]["trace_id"] as? String, "4bf92f3577b34da6a3ce929d0e0e4736")
        XCTAssertEqual(lines[0]["upstream"] as? String, "10.0.0.7:8080")
        XCTAssertEqual(lines[0]["local"] as? Bool, false)
        XCTAssertEqual(lines[0]["retries"] as? Int, 2)
        XCTAssertEqual(lines[0]["duration_us"] as? Int, 1500)
        XCTAssertTrue(lines[0]["reason"] is NSNull)
        XCTAssertEqual(lines[1]["trace_id"] as? String, "-")
        XCTAssertEqual(lines[1]["upstream"] as? String, "-")
        XCTAssertEqual(lines[1]["local"] as? Bool, true)
        XCTAssertEqual(lines[1]["reason"] as? String, "upstream_connect_failed")
    }

    func testPorticosOwnTraceIDWinsWhenTracingIsOn() throws {
        context.tap.add(id: 1, filter: TapFilter(), prefix: "data: ", sink: sink)
        let trace = RequestTrace(traceIDHigh: 0x0123_4567_89ab_cdef, traceIDLow: 0x0fed_cba9_8765_4321, spanID: 7, parentSpanID: 0,
                                 sampled: true, recording: true, started: .now())
        end(route: "api", status: 200, trace: trace)
        loop.advanceTime(by: LoopTap.handOverInterval)
        let lines = try objects(batches.withLockedValue { $0.first?.text ?? "" })
        XCTAssertEqual(lines.first?["trace_id"] as? String, "0123456789abcdef0fedcba987654321")
    }

    func testAFullBufferDropsAndCountsUntilTheHandOver() {
        context.tap.add(id: 1, filter: TapFilter(), prefix: "data: ", sink: sink)
        for _ in 0..<(LoopTap.capacity + 5) { end(route: "api", status: 200) }
        loop.advanceTime(by: LoopTap.handOverInterval)
        XCTAssertEqual(batches.withLockedValue { $0.map(\.lines) }, [LoopTap.capacity])
        XCTAssertEqual(batches.withLockedValue { $0.map(\.dropped) }, [5])
        end(route: "api", status: 200)
        loop.advanceTime(by: LoopTap.handOverInterval)
        XCTAssertEqual(batches.withLockedValue { $0.map(\.lines) }, [LoopTap.capacity, 1], "room again after the hand-over")
    }

    func testARemovedTapGetsNothingMoreNotEvenItsPendingBatch() {
        context.tap.add(id: 1, filter: TapFilter(), prefix: "data: ", sink: sink)
        context.tap.add(id: 2, filter: TapFilter(route: "none"), prefix: "data: ", sink: sink)
        end(route: "api", status: 200)
        context.tap.remove(id: 1)
        loop.advanceTime(by: .seconds(1))
        end(route: "api", status: 200)
        loop.advanceTime(by: .seconds(1))
        XCTAssertTrue(batches.withLockedValue { $0.isEmpty })
        context.tap.remove(id: 2)
        XCTAssertFalse(context.tap.hasSubscribers)
    }
}
