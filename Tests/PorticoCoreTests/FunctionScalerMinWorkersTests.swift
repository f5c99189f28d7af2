import PorticoCore
import XCTest

private func w(_ n: UInt64) -> FunctionScaler.WorkerID { .init(n) }
private func r(_ n: UInt64) -> FunctionScaler.RequestID { .init(n) }
private let ms: UInt64 = 1_000_000
private let second: UInt64 = 1_000_000_000

/// `minWorkers` event by event: warm workers without traffic, idle reaping that stops at the
/// minimum, and a worker that keeps crashing after it came up replaced with backoff.
final class FunctionScalerMinWorkersTests: XCTestCase {
    private func scaler(minWorkers: Int, maxWorkers: Int = 4, concurrency: Int = 1) -> FunctionScaler {
        FunctionScaler(configuration: .init(concurrency: concurrency, minWorkers: minWorkers, maxWorkers: maxWorkers,
                                            idleTimeout: 30 * second, startupTimeout: 10 * second,
                                            crashBackoff: (100 * ms, 10 * second)))
    }

    func testIdleReapingAfterABurstStopsAtMinWorkers() {
        var scaler = scaler(minWorkers: 1, maxWorkers: 3)
        XCTAssertEqual(scaler.start(now: 0), [.startWorker(w(1)), .scheduleStartupTimeout(w(1), after: 10 * second)])
        XCTAssertEqual(scaler.workerReady(w(1), now: 1 * ms), [.scheduleIdleCheck(w(1), after: 30 * second)])
        // A burst of three takes the warm worker and starts two more.
        XCTAssertEqual(scaler.requestArrived(r(1), now: 2 * ms), [.dispatch(r(1), to: w(1))])
        _ = scaler.requestArrived(r(2), now: 2 * ms)
        _ = scaler.requestArrived(r(3), now: 2 * ms)
        XCTAssertEqual(scaler.liveWorkerCount, 3)
        XCTAssertEqual(scaler.workerReady(w(2), now: 5 * ms), [.dispatch(r(2), to: w(2))])
        XCTAssertEqual(scaler.workerReady(w(3), now: 5 * ms), [.dispatch(r(3), to: w(3))])
        for (request, worker) in [(r(1), w(1)), (r(2), w(2)), (r(3), w(3))] {
            XCTAssertEqual(scaler.requestFinished(request, worker: worker, now: 10 * ms),
                           [.scheduleIdleCheck(worker, after: 30 * second)])
        }
        // Every worker has been idle for the idle timeout: two go, the last one stays.
        XCTAssertEqual(scaler.idleCheckFired(w(1), now: 31 * second), [.stopWorker(w(1))])
        XCTAssertEqual(scaler.idleCheckFired(w(2), now: 31 * second), [.stopWorker(w(2))])
        XCTAssertEqual(scaler.idleCheckFired(w(3), now: 31 * second), [], "minWorkers 1: the last worker is kept")
        _ = scaler.workerExited(w(1), now: 32 * second)
        _ = scaler.workerExited(w(2), now: 32 * second)
        XCTAssertEqual(scaler.readyWorkerCount, 1)
        XCTAssertEqual(scaler.liveWorkerCount, 1, "nothing was started to make up for the stopped ones")
    }

    func testAWorkerThatKeepsCrashingAfterItCameUpIsReplacedWithBackoff() {
        var scaler = scaler(minWorkers: 1)
        _ = scaler.start(now: 0)
        _ = scaler.workerReady(w(1), now: 10 * ms)
        // The first crash is replaced at once: the worker had come up fine.
        XCTAssertEqual(scaler.workerExited(w(1), now: 20 * ms), [.startWorker(w(2)), .scheduleStartupTimeout(w(2), after: 10 * second)])
        XCTAssertEqual(scaler.consecutiveCrashes, 1)
        _ = scaler.workerReady(w(2), now: 30 * ms)
        // It crashes again soon after coming up: the replacement waits 100 ms, then 200 ms.
        XCTAssertEqual(scaler.workerExited(w(2), now: 40 * ms), [.scheduleRetry(after: 100 * ms)])
        XCTAssertEqual(scaler.liveWorkerCount, 0, "below minWorkers for the backoff")
        XCTAssertEqual(scaler.retryFired(now: 140 * ms), [.startWorker(w(3)), .scheduleStartupTimeout(w(3), after: 10 * second)])
        // A worker becoming ready does not clear the crash backoff (it clears the start backoff).
        _ = scaler.workerReady(w(3), now: 150 * ms)
        XCTAssertEqual(scaler.workerExited(w(3), now: 160 * ms), [.scheduleRetry(after: 200 * ms)])
        XCTAssertEqual(scaler.retryFired(now: 300 * ms), [.scheduleRetry(after: 60 * ms)], "a timer that fired early waits out the rest")
        XCTAssertEqual(scaler.retryFired(now: 360 * ms), [.startWorker(w(4)), .scheduleStartupTimeout(w(4), after: 10 * second)])
        XCTAssertEqual(scaler.consecutiveCrashes, 3)
        // A worker that stayed up for the longest backoff ends the run: its crash is replaced at once.
        _ = scaler.workerReady(w(4), now: 400 * ms)
        XCTAssertEqual(scaler.workerExited(w(4), now: 11 * second), [.startWorker(w(5)), .scheduleStartupTimeout(w(5), after: 10 * second)])
        XCTAssertEqual(scaler.consecutiveCrashes, 1)
        XCTAssertEqual(scaler.consecutiveStartFailures, 0, "crashes after ready are not failed starts")
    }

    func testAStoppedOrDrainedWorkerIsNoCrash() {
        var scaler = scaler(minWorkers: 1, maxWorkers: 2)
        _ = scaler.start(now: 0)
        _ = scaler.workerReady(w(1), now: 1 * ms)
        _ = scaler.requestArrived(r(1), now: 2 * ms)
        // Ejected by outlier detection: it finishes its request, is stopped, and its exit is no crash.
        _ = scaler.workerEjected(w(1), now: 3 * ms)
        _ = scaler.workerReady(w(2), now: 4 * ms)
        XCTAssertEqual(scaler.requestFinished(r(1), worker: w(1), now: 5 * ms), [.stopWorker(w(1))])
        XCTAssertEqual(scaler.workerExited(w(1), now: 6 * ms), [])
        XCTAssertEqual(scaler.consecutiveCrashes, 0)
        _ = scaler.drain()
        XCTAssertEqual(scaler.workerExited(w(2), now: 7 * ms), [])
        XCTAssertEqual(scaler.consecutiveCrashes, 0, "a drained revision's exits are no crashes")
    }

    func testAGivenUpWarmUpStartsNoMoreWorkersButARequestStillDoes() {
        var scaler = scaler(minWorkers: 0)
        XCTAssertEqual(scaler.warmUp(now: 0), [.startWorker(w(1)), .scheduleStartupTimeout(w(1), after: 10 * second)])
        XCTAssertEqual(scaler.workerExited(w(1), now: 1 * ms), [.scheduleRetry(after: 100 * ms)])
        scaler.cancelWarmUp()
        XCTAssertFalse(scaler.isWarming)
        XCTAssertEqual(scaler.retryFired(now: 200 * ms), [], "nobody wants a worker now")
        XCTAssertEqual(scaler.requestArrived(r(1), now: 300 * ms), [.startWorker(w(2)), .scheduleStartupTimeout(w(2), after: 10 * second)])
    }
}
