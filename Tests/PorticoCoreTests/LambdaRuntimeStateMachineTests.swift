import PorticoCore
import XCTest

final class LambdaRuntimeStateMachineTests: XCTestCase {
    typealias Machine = LambdaRuntimeStateMachine<String>

    func testTheFirstPollMakesTheWorkerReadyAndAnInvocationGoesToThePoll() {
        var machine = Machine()
        XCTAssertEqual(machine.state, .initializing)
        XCTAssertEqual(machine.nextRequested(on: 1), [.workerReady])
        XCTAssertEqual(machine.state, .polling(1))
        XCTAssertEqual(machine.invocationArrived("a"), [.startDeadline("a"), .deliver("a", to: 1)])
        XCTAssertEqual(machine.state, .running("a"))
        XCTAssertEqual(machine.responsePosted("a", body: "{}", on: 2),
                       [.accept(2), .cancelDeadline("a"), .finish("a", .response("{}"))])
        XCTAssertEqual(machine.state, .idle)
        // The runtime polls again at once: the next invocation goes straight to it.
        XCTAssertEqual(machine.nextRequested(on: 3), [])
        XCTAssertEqual(machine.invocationArrived("b"), [.startDeadline("b"), .deliver("b", to: 3)])
    }

    func testAnInvocationThatArrivesBeforeThePollWaitsForIt() {
        var machine = Machine()
        _ = machine.nextRequested(on: 1)
        _ = machine.invocationArrived("a")
        _ = machine.responsePosted("a", body: "1", on: 2)
        XCTAssertEqual(machine.invocationArrived("b"), [.startDeadline("b")])
        XCTAssertEqual(machine.state, .queued("b"))
        XCTAssertEqual(machine.nextRequested(on: 4), [.deliver("b", to: 4)])
        XCTAssertEqual(machine.errorPosted("b", body: "boom", on: 5),
                       [.accept(5), .cancelDeadline("b"), .finish("b", .error("boom"))])
    }

    func testAnswersForAnotherInvocationAreRefusedAndChangeNothing() {
        var machine = Machine()
        _ = machine.nextRequested(on: 1)
        _ = machine.invocationArrived("a")
        XCTAssertEqual(machine.responsePosted("zzz", body: "x", on: 2), [.refuse(2, .unknownInvocation)])
        XCTAssertEqual(machine.errorPosted("zzz", body: "x", on: 2), [.refuse(2, .unknownInvocation)])
        XCTAssertEqual(machine.state, .running("a"))
        // Answered once; a second answer is for an invocation it no longer has.
        _ = machine.responsePosted("a", body: "1", on: 3)
        XCTAssertEqual(machine.responsePosted("a", body: "2", on: 4), [.refuse(4, .unknownInvocation)])
    }

    func testASecondInvocationWhileOneRunsIsRefused() {
        var machine = Machine()
        _ = machine.nextRequested(on: 1)
        _ = machine.invocationArrived("a")
        XCTAssertEqual(machine.invocationArrived("b"), [.finish("b", .refused)])
        XCTAssertEqual(machine.state, .running("a"))
    }

    func testAPollWhileRunningLosesTheInvocation() {
        var machine = Machine()
        _ = machine.nextRequested(on: 1)
        _ = machine.invocationArrived("a")
        XCTAssertEqual(machine.nextRequested(on: 2), [.cancelDeadline("a"), .finish("a", .lost)])
        XCTAssertEqual(machine.state, .polling(2))
    }

    func testASecondPollWhileOneWaitsIsRefused() {
        var machine = Machine()
        _ = machine.nextRequested(on: 1)
        XCTAssertEqual(machine.nextRequested(on: 2), [.refuse(2, .invalidState)])
        XCTAssertEqual(machine.state, .polling(1))
    }

    func testAClosedPollLeavesTheWorkerIdleAndTheNextInvocationWaits() {
        var machine = Machine()
        _ = machine.nextRequested(on: 1)
        XCTAssertEqual(machine.connectionClosed(2), [])
        XCTAssertEqual(machine.state, .polling(1))
        XCTAssertEqual(machine.connectionClosed(1), [])
        XCTAssertEqual(machine.state, .idle)
        XCTAssertEqual(machine.invocationArrived("a"), [.startDeadline("a")])
        XCTAssertEqual(machine.state, .queued("a"))
    }

    func testInitErrorFailsTheStartOnlyWhileInitializing() {
        var machine = Machine()
        XCTAssertEqual(machine.initErrorPosted(body: "ImportError", on: 1), [.accept(1), .initFailed("ImportError")])
        XCTAssertEqual(machine.state, .finished)
        XCTAssertEqual(machine.nextRequested(on: 2), [.refuse(2, .invalidState)])

        var ready = Machine()
        _ = ready.nextRequested(on: 1)
        XCTAssertEqual(ready.initErrorPosted(body: "late", on: 2), [.refuse(2, .invalidState)])
        XCTAssertEqual(ready.state, .polling(1))
    }

    func testADeadlineTimesTheInvocationOutAndKillsTheWorker() {
        var machine = Machine()
        _ = machine.nextRequested(on: 1)
        _ = machine.invocationArrived("a")
        XCTAssertEqual(machine.deadlinePassed("other"), [])
        XCTAssertEqual(machine.deadlinePassed("a"), [.killWorker, .finish("a", .timedOut)])
        XCTAssertEqual(machine.state, .finished)
        // A late answer from the runtime is refused, and nothing else is finished twice.
        XCTAssertEqual(machine.responsePosted("a", body: "late", on: 2), [.refuse(2, .invalidState)])
        XCTAssertEqual(machine.invocationArrived("b"), [.finish("b", .refused)])
        XCTAssertEqual(machine.workerExited(), [])
    }

    func testADeadlineAfterTheAnswerDoesNothing() {
        var machine = Machine()
        _ = machine.nextRequested(on: 1)
        _ = machine.invocationArrived("a")
        _ = machine.responsePosted("a", body: "ok", on: 2)
        XCTAssertEqual(machine.deadlinePassed("a"), [])
        XCTAssertEqual(machine.state, .idle)
    }

    func testAWorkerThatExitsLosesWhatItHad() {
        var running = Machine()
        _ = running.nextRequested(on: 1)
        _ = running.invocationArrived("a")
        XCTAssertEqual(running.workerExited(), [.cancelDeadline("a"), .finish("a", .lost)])

        var queued = Machine()
        _ = queued.invocationArrived("q")
        XCTAssertEqual(queued.workerExited(), [.cancelDeadline("q"), .finish("q", .lost)])

        var idle = Machine()
        XCTAssertEqual(idle.workerExited(), [])
        XCTAssertEqual(idle.state, .finished)
    }
}
