import Foundation
@testable import PorticoProxy
import XCTest

/// The `GET /functions` body: what a deployed and a failed function show.
final class FunctionListingTests: XCTestCase {
    private func decode(_ listing: FunctionListing) throws -> [[String: Any]] {
        let data = listing.encoded()
        XCTAssertEqual(data.last, UInt8(ascii: "\n"))
        let json = try XCTUnwrap(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        return try XCTUnwrap(json["functions"] as? [[String: Any]])
    }

    func testADeployedFunctionShowsItsRevisionAndWorkers() throws {
        let status = FunctionStatus(name: "hello", revision: "hello-abc", mode: "http", state: "active", queueLength: 2,
                                    lastError: "worker exited", workers: [
                                        .init(id: 7, pid: 4242, port: 30001, state: "ready", inFlight: 1, ageSeconds: 1.23456),
                                        .init(id: 8, pid: nil, port: nil, state: "starting", inFlight: 0, ageSeconds: 0),
                                    ])
        let entry = try XCTUnwrap(try decode(FunctionListing(functions: [
            .init(name: "hello", routes: ["function-hello"], failure: nil, status: status),
        ])).first)
        XCTAssertEqual(entry["name"] as? String, "hello")
        XCTAssertEqual(entry["revision"] as? String, "hello-abc")
        XCTAssertEqual(entry["mode"] as? String, "http")
        XCTAssertEqual(entry["state"] as? String, "active")
        XCTAssertEqual(entry["queueLength"] as? Int, 2)
        XCTAssertEqual(entry["routes"] as? [String], ["function-hello"])
        XCTAssertEqual(entry["lastError"] as? String, "worker exited", "the function's own last error")
        let workers = try XCTUnwrap(entry["workers"] as? [[String: Any]])
        XCTAssertEqual(workers.count, 2)
        XCTAssertEqual(workers[0]["pid"] as? Int, 4242)
        XCTAssertEqual(workers[0]["port"] as? Int, 30001)
        XCTAssertEqual(workers[0]["inFlight"] as? Int, 1)
        XCTAssertEqual(workers[0]["ageSeconds"] as? Double, 1.235, "rounded to the millisecond")
        XCTAssertNil(workers[1]["pid"], "a starting worker has no pid yet")
    }

    /// A broken folder's error wins over the serving revision's, and a function with no
    /// serving revision shows as failed, with nothing else.
    func testFailuresShowTheirReason() throws {
        let status = FunctionStatus(name: "a", revision: "a-1", mode: "http", state: "idle", queueLength: 0,
                                    lastError: "old", workers: [])
        let entries = try decode(FunctionListing(functions: [
            .init(name: "a", routes: [], failure: "build failed; revision a-1 keeps serving", status: status),
            .init(name: "b", routes: ["function-b"], failure: "function.yaml:2:1: concurency: unknown key", status: nil),
        ]))
        XCTAssertEqual(entries[0]["lastError"] as? String, "build failed; revision a-1 keeps serving")
        XCTAssertEqual(entries[0]["revision"] as? String, "a-1")
        XCTAssertEqual(entries[1]["state"] as? String, "failed")
        XCTAssertEqual(entries[1]["lastError"] as? String, "function.yaml:2:1: concurency: unknown key")
        XCTAssertEqual(Set(entries[1].keys), ["name", "routes", "state", "lastError"])
    }
}
