import XCTest
import PorticoCore

final class TemplateProcessStateMachineTests: XCTestCase {
    typealias Machine = TemplateProcessStateMachine

    func testAnIdleTemplateStartsAtDeployAndForksEachWorkerOnceReady() {
        var machine = Machine(configuration: .init(keepWhileIdle: true))
        XCTAssertEqual(machine.deployed(), [.spawn])
        XCTAssertEqual(machine.phase, .starting)
        // A cold start that arrives during the import waits for it.
        XCTAssertEqual(machine.workerNeeded(1), [])
        XCTAssertEqual(machine.templateReady(), [.fork(1)])
        XCTAssertEqual(machine.forked(1), [])
        XCTAssertEqual(machine.workerNeeded(2), [.fork(2)])
        XCTAssertEqual(machine.forked(2), [])
        XCTAssertEqual(machine.liveWorkers, [1, 2])
        // The last worker goes; the template stays, so the next cold start only forks.
        XCTAssertEqual(machine.workerExited(1), [])
        XCTAssertEqual(machine.workerExited(2), [])
        XCTAssertEqual(machine.phase, .ready)
        XCTAssertEqual(machine.workerNeeded(3), [.fork(3)])
    }

    func testWithoutIdleTemplateItStartsOnDemandAndStopsWithTheLastWorker() {
        var machine = Machine(configuration: .init(keepWhileIdle: false))
        XCTAssertEqual(machine.deployed(), [])
        XCTAssertEqual(machine.phase, .stopped)
        XCTAssertEqual(machine.workerNeeded(1), [.spawn])
        XCTAssertEqual(machine.workerNeeded(2), [])
        XCTAssertEqual(machine.templateReady(), [.fork(1), .fork(2)])
        XCTAssertEqual(machine.forked(1), [])
        XCTAssertEqual(machine.forked(2), [])
        XCTAssertEqual(machine.workerExited(1), [])
        XCTAssertEqual(machine.workerExited(2), [.stop])
        XCTAssertEqual(machine.phase, .stopping)
        // A worker wanted while it stops waits for the exit, then a new template starts.
        XCTAssertEqual(machine.workerNeeded(3), [])
        XCTAssertEqual(machine.templateExited(status: "exit 0"), [.spawn])
        XCTAssertEqual(machine.failures, 0)
        XCTAssertEqual(machine.templateReady(), [.fork(3)])
    }

    func testAnIdleStopWithNothingWaitingEndsStopped() {
        var machine = Machine(configuration: .init(keepWhileIdle: false))
        _ = machine.workerNeeded(1)
        _ = machine.templateReady()
        _ = machine.forked(1)
        XCTAssertEqual(machine.workerExited(1), [.stop])
        XCTAssertEqual(machine.templateExited(status: "exit 0"), [])
        XCTAssertEqual(machine.phase, .stopped)
        XCTAssertNil(machine.lastFailure)
    }

    func testAnImportThatFailsFailsTheWaitingWorkersWithItsTracebackAndRestartsWithBackoff() {
        var machine = Machine(configuration: .init(keepWhileIdle: true, restartDelay: 100, maximumRestartDelay: 350))
        _ = machine.deployed()
        XCTAssertEqual(machine.workerNeeded(1), [])
        machine.templateReportedFailure("Traceback ... ModuleNotFoundError: No module named 'numpy'")
        let reason = "Traceback ... ModuleNotFoundError: No module named 'numpy'"
        XCTAssertEqual(machine.templateExited(status: "exit 1"), [.workerFailed(1, reason: reason), .scheduleRestart(after: 100)])
        XCTAssertEqual(machine.lastFailure, reason)
        XCTAssertEqual(machine.phase, .waitingToRestart)
        // Workers wanted during the wait are queued for the restarted template.
        XCTAssertEqual(machine.workerNeeded(2), [])
        XCTAssertEqual(machine.restartFired(), [.spawn])
        // Each failure in a row doubles the wait, up to the maximum.
        XCTAssertEqual(machine.templateExited(status: "exit 1"),
                       [.workerFailed(2, reason: "the template process exited (exit 1)"), .scheduleRestart(after: 200)])
        _ = machine.restartFired()
        XCTAssertEqual(machine.templateExited(status: "signal 9"), [.scheduleRestart(after: 350)])
        XCTAssertEqual(machine.failures, 3)
        // A template that forks again is healthy: the count starts over.
        _ = machine.restartFired()
        _ = machine.templateReady()
        XCTAssertEqual(machine.workerNeeded(3), [.fork(3)])
        XCTAssertEqual(machine.forked(3), [])
        XCTAssertEqual(machine.failures, 0)
    }

    func testACrashTakesItsWorkersAndForksInFlightWithIt() {
        var machine = Machine(configuration: .init(keepWhileIdle: true, restartDelay: 100))
        _ = machine.deployed()
        _ = machine.templateReady()
        _ = machine.workerNeeded(1)
        _ = machine.forked(1)
        XCTAssertEqual(machine.workerNeeded(2), [.fork(2)])
        XCTAssertEqual(machine.templateExited(status: "signal 9"), [
            .workerLost(1), .workerFailed(2, reason: "the template process exited (signal 9)"), .scheduleRestart(after: 100),
        ])
        XCTAssertEqual(machine.liveWorkers, [])
    }

    func testWithoutIdleTemplateARestartWaitsForDemand() {
        var machine = Machine(configuration: .init(keepWhileIdle: false, restartDelay: 100))
        _ = machine.workerNeeded(1)
        _ = machine.templateExited(status: "exit 1")
        XCTAssertEqual(machine.restartFired(), [])
        XCTAssertEqual(machine.phase, .stopped)
        XCTAssertEqual(machine.workerNeeded(2), [.spawn])
    }

    func testAForkThatFailsIsAWorkerThatFailedAndTheTemplateStays() {
        var machine = Machine(configuration: .init(keepWhileIdle: true))
        _ = machine.deployed()
        _ = machine.templateReady()
        _ = machine.workerNeeded(1)
        XCTAssertEqual(machine.forkFailed(1, reason: "cannot listen: address in use"),
                       [.workerFailed(1, reason: "cannot listen: address in use")])
        XCTAssertEqual(machine.phase, .ready)
        // Reports about unknown workers change nothing.
        XCTAssertEqual(machine.forked(9), [])
        XCTAssertEqual(machine.workerExited(9), [])
    }

    func testACancelledWorkerLeavesTheQueueAndMayLetAnOnDemandTemplateStop() {
        var machine = Machine(configuration: .init(keepWhileIdle: false))
        _ = machine.workerNeeded(1)
        _ = machine.workerNeeded(2)
        XCTAssertEqual(machine.workerCancelled(1), [])
        XCTAssertEqual(machine.templateReady(), [.fork(2)])
        _ = machine.forkFailed(2, reason: "fork: out of memory")
        XCTAssertEqual(machine.phase, .stopping)
    }

    func testFinishingStopsTheTemplateAndFailsWhatWaits() {
        var machine = Machine(configuration: .init(keepWhileIdle: true))
        _ = machine.deployed()
        _ = machine.workerNeeded(1)
        XCTAssertEqual(machine.finish(), [.workerFailed(1, reason: "the revision is stopping"), .stop])
        XCTAssertEqual(machine.phase, .finished)
        XCTAssertEqual(machine.workerNeeded(2), [.workerFailed(2, reason: "the revision is stopping")])
        // Its exit after that is expected: no restart, no failure recorded.
        XCTAssertEqual(machine.templateExited(status: "exit 0"), [])
        XCTAssertEqual(machine.failures, 0)
        XCTAssertEqual(machine.restartFired(), [])
    }

    func testFinishingWhileWaitingToRestartCancelsTheRestart() {
        var machine = Machine(configuration: .init(keepWhileIdle: true))
        _ = machine.deployed()
        _ = machine.templateExited(status: "exit 1")
        XCTAssertEqual(machine.finish(), [])
        XCTAssertEqual(machine.restartFired(), [])
        XCTAssertEqual(machine.phase, .finished)
    }
}
