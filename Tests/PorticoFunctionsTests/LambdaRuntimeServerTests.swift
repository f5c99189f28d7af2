import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import PorticoCore
@testable import PorticoFunctions
import XCTest

/// A worker's Runtime API on a real loopback socket, driven by curl as a runtime would: the
/// long poll, the headers of an invocation, the answers Lambda gives to calls out of turn,
/// and a deadline.
final class LambdaRuntimeServerTests: XCTestCase {
    private var group: MultiThreadedEventLoopGroup!
    private var loop: EventLoop { group.next() }

    override func setUp() {
        group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    }

    override func tearDown() {
        try? group.syncShutdownGracefully()
    }

    private final class Events: @unchecked Sendable {
        let lock = NIOLock()
        var ready = 0
        var timedOut = 0
        var initErrors: [String] = []
        var outcomes: [String: String] = [:]

        func with<T>(_ body: (Events) -> T) -> T { lock.withLock { body(self) } }
    }


    func testTheRuntimeAPIAsARuntimeSeesIt() throws {
        let events = Events()
        let loop = self.loop
        let server = try loop.submit {
            let server = try LambdaRuntimeServer(eventLoop: loop, functionARN: "arn:aws:lambda:us-east-1:000000000000:function:f",
                                                 timeout: .seconds(2), logger: Logger(label: "test"))
            server.onReady = { events.with { $0.ready += 1 } }
            server.onTimedOut = { events.with { $0.timedOut += 1 } }
            server.onInitError = { error in events.with { $0.initErrors.append(error) } }
            return server
        }.wait()
        let api = "http://127.0.0.1:\(server.port)/2018-06-01/runtime"
        let invoke = { (id: String, event: String) in
            loop.execute {
                server.invoke(id: id, event: ByteBuffer(string: event)) { outcome in
                    let text: String
                    switch outcome {
                    case .response(let body): text = "response " + String(buffer: body)
                    case .error(let body): text = "error " + String(buffer: body)
                    case .timedOut: text = "timed out"
                    case .lost: text = "lost"
                    case .refused: text = "refused"
                    }
                    events.with { $0.outcomes[id] = text }
                }
            }
        }

        XCTAssertEqual(try runCurl(["\(api)/nothing"]).status, 404)
        XCTAssertEqual(try runCurl(["-d", "{}", "\(api)/invocation/nobody/response"]).status, 400, "no such invocation")

        // The long poll: answered only once there is an invocation.
        let polled = NIOLockedValueBox<(status: Int, body: String, headers: String)?>(nil)
        let poll = Thread {
            let answer = try? runCurl(["\(api)/invocation/next"])
            polled.withLockedValue { $0 = answer }
        }
        poll.start()
        XCTAssertTrue(eventually { events.with { $0.ready } == 1 }, "the first poll makes the worker ready")
        XCTAssertNil(polled.withLockedValue { $0 }, "the poll waits")
        let before = Int64(Date().timeIntervalSince1970 * 1000)
        invoke("inv-1", #"{"k":1}"#)
        XCTAssertTrue(eventually { polled.withLockedValue { $0 } != nil })
        let next = try XCTUnwrap(polled.withLockedValue { $0 })
        XCTAssertEqual(next.status, 200)
        XCTAssertEqual(next.body, #"{"k":1}"#)
        let headers = next.headers.lowercased()
        XCTAssertTrue(headers.contains("lambda-runtime-aws-request-id: inv-1"), headers)
        XCTAssertTrue(headers.contains("lambda-runtime-invoked-function-arn: arn:aws:lambda:us-east-1:000000000000:function:f"))
        XCTAssertTrue(headers.contains("lambda-runtime-trace-id: root=1-"), headers)
        let deadline = try XCTUnwrap(headers.split(whereSeparator: \.isNewline).first { $0.hasPrefix("lambda-runtime-deadline-ms:") }
            .flatMap { Int64($0.split(separator: ":")[1].trimmingCharacters(in: .whitespacesAndNewlines)) })
        XCTAssertTrue(deadline >= before + 2000 && deadline < before + 4000, "now plus the timeout: \(deadline - before)")

        XCTAssertEqual(try runCurl(["-d", #""done""#, "\(api)/invocation/inv-1/response"]).status, 202)
        XCTAssertTrue(eventually { events.with { $0.outcomes["inv-1"] } == #"response "done""# })
        XCTAssertEqual(try runCurl(["-d", "{}", "\(api)/init/error"]).status, 403, "too late for an init error")

        // An error call, with a body much larger than curl sends without asking first.
        invoke("inv-2", "{}")
        XCTAssertEqual(try runCurl(["\(api)/invocation/next"]).status, 200)
        let large = String(repeating: "e", count: 2 << 20)
        let largeFile = FileManager.default.temporaryDirectory.appendingPathComponent("lambda-error-\(UUID().uuidString)")
        try large.write(to: largeFile, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: largeFile) }
        XCTAssertEqual(try runCurl(["--data-binary", "@\(largeFile.path)", "\(api)/invocation/inv-2/error"]).status, 202)
        XCTAssertTrue(eventually { events.with { $0.outcomes["inv-2"] }?.count == 6 + large.count })

        // Past the deadline: timed out, the worker is to be killed, and a late answer is refused.
        invoke("inv-3", "{}")
        XCTAssertEqual(try runCurl(["\(api)/invocation/next"]).status, 200)
        XCTAssertTrue(eventually { events.with { $0.outcomes["inv-3"] } == "timed out" })
        XCTAssertEqual(events.with { $0.timedOut }, 1)
        XCTAssertEqual(try runCurl(["-d", "{}", "\(api)/invocation/inv-3/response"]).status, 403)
        try loop.submit { server.close() }.wait()
    }

    func testAnInitErrorIsReportedWithItsTypeAndMessage() throws {
        let events = Events()
        let loop = self.loop
        let server = try loop.submit {
            let server = try LambdaRuntimeServer(eventLoop: loop, functionARN: "arn", timeout: .seconds(2), logger: Logger(label: "test"))
            server.onInitError = { error in events.with { $0.initErrors.append(error) } }
            return server
        }.wait()
        let body = #"{"errorMessage": "cannot load the model", "errorType": "RuntimeError", "stackTrace": []}"#
        XCTAssertEqual(try runCurl(["-d", body, "http://127.0.0.1:\(server.port)/2018-06-01/runtime/init/error"]).status, 202)
        XCTAssertTrue(eventually { events.with { $0.initErrors } == ["RuntimeError: cannot load the model"] })
        try loop.submit { server.close() }.wait()
    }
}

/// curl as a runtime uses it: the status, the body and the response's headers.
private func runCurl(_ arguments: [String]) throws -> (status: Int, body: String, headers: String) {
    let headersFile = FileManager.default.temporaryDirectory.appendingPathComponent("lambda-api-\(UUID().uuidString)")
    defer { try? FileManager.default.removeItem(at: headersFile) }
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
    process.arguments = ["-sS", "--max-time", "20", "-D", headersFile.path, "-w", "\n%{http_code}"] + arguments
    let output = Pipe()
    process.standardOutput = output
    try process.run()
    let data = output.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    let text = String(decoding: data, as: UTF8.self)
    let newline = text.lastIndex(of: "\n")!
    let headers = (try? String(contentsOf: headersFile, encoding: .utf8)) ?? ""
    return (Int(text[text.index(after: newline)...]) ?? 0, String(text[..<newline]), headers)
}
