import PorticoCore
import XCTest

private typealias Scaler = FunctionScaler
private func r(_ n: UInt64) -> FunctionScaler.RequestID { .init(n) }
private func w(_ n: UInt64) -> FunctionScaler.WorkerID { .init(n) }

private let ms: UInt64 = 1_000_000
private let second: UInt64 = 1_000_000_000

private func config(
    concurrency: Int = 1,
    minWorkers: Int = 0,
    maxWorkers: Int = 4,
    queueLimit: Int = 100,
    idleTimeout: UInt64 = 60 * second,
    startupTimeout: UInt64 = 10 * second,
    crashBackoff: (initial: UInt64, max: UInt64) = (100 * ms, 10 * second)
) -> Scaler.Configuration {
    .init(concurrency: concurrency, minWorkers: minWorkers, maxWorkers: maxWorkers, queueLimit: queueLimit,
          idleTimeout: idleTimeout, startupTimeout: startupTimeout, crashBackoff: crashBackoff)
}

final class FunctionScalerTests: XCTestCase {
    // MARK: Cold start and dispatch

    func testColdStartStartsOneWorkerAndDispatchesTheRequestWhenReady() {
        var scaler = Scaler(configuration: config())
        XCTAssertEqual(scaler.start(now: 0), [], "minWorkers 0: nothing runs until a request comes")
        XCTAssertEqual(scaler.requestArrived(r(1), now: 0),
                       [.startWorker(w(1)), .scheduleStartupTimeout(w(1), after: 10 * second)])
        XCTAssertEqual(scaler.queueLength, 1, "the request waits for the cold worker, it is not refused")
        XCTAssertEqual(scaler.worker(w(1))?.state, .starting)

        XCTAssertEqual(scaler.workerReady(w(1), now: 300 * ms), [.dispatch(r(1), to: w(1))])
        XCTAssertEqual(scaler.queueLength, 0)
        XCTAssertEqual(scaler.worker(w(1))?.state, .ready)
        XCTAssertEqual(scaler.worker(w(1))?.inFlight, 1)
    }

    func testAnUnreachableWorkerGetsNoMoreRequestsAndIsReplaced() {
        var scaler = Scaler(configuration: config(concurrency: 2, minWorkers: 2))
        _ = scaler.start(now: 0)
        _ = scaler.workerReady(w(1), now: 1)
        _ = scaler.workerReady(w(2), now: 1)
        XCTAssertEqual(scaler.requestArrived(r(1), now: 2), [.dispatch(r(1), to: w(1))])
        // Worker 1 refused the connection: it is killed, and minWorkers brings a replacement.
        XCTAssertEqual(scaler.workerFailed(w(1), now: 3),
                       [.replaceFailedWorker(w(1)), .startWorker(w(3)), .scheduleStartupTimeout(w(3), after: 10 * second)])
        XCTAssertEqual(scaler.worker(w(1))?.state, .stopping)
        XCTAssertEqual(scaler.requestFinished(r(1), worker: w(1), now: 3), [])
        XCTAssertEqual(scaler.requestArrived(r(2), now: 4), [.dispatch(r(2), to: w(2))], "the request asks again: another worker")
        XCTAssertEqual(scaler.requestArrived(r(3), now: 4), [.dispatch(r(3), to: w(2))], "never the unreachable one")
        XCTAssertEqual(scaler.workerFailed(w(1), now: 5), [], "reported twice: once is enough")
        XCTAssertEqual(scaler.workerExited(w(1), now: 6), [], "its exit changes nothing more")
    }

    func testAnEjectedWorkerFinishesItsRequestsThenStops() {
        var scaler = Scaler(configuration: config(concurrency: 2, maxWorkers: 2))
        _ = scaler.requestArrived(r(1), now: 0)
        _ = scaler.workerReady(w(1), now: 1)
        XCTAssertEqual(scaler.requestArrived(r(2), now: 2), [.dispatch(r(2), to: w(1))])
        // Ejected with two requests in flight: no kill, no more requests; a replacement starts
        // for the demand it leaves.
        XCTAssertEqual(scaler.workerEjected(w(1), now: 3),
                       [.startWorker(w(2)), .scheduleStartupTimeout(w(2), after: 10 * second)])
        XCTAssertEqual(scaler.worker(w(1))?.state, .draining)
        XCTAssertEqual(scaler.requestArrived(r(3), now: 4), [], "waits for the new worker, not the ejected one")
        XCTAssertEqual(scaler.requestFinished(r(1), worker: w(1), now: 5), [])
        XCTAssertEqual(scaler.requestFinished(r(2), worker: w(1), now: 6), [.stopWorker(w(1))], "stopped once idle")
        XCTAssertEqual(scaler.workerReady(w(2), now: 7), [.dispatch(r(3), to: w(2))])
        XCTAssertEqual(scaler.workerEjected(w(2), now: 8).first, nil as Scaler.Action?,
                       "busy: drains; nothing to stop yet and the demand is covered")
    }

    func testWarmWorkerServesTheNextRequestWithoutAStart() {
        var scaler = Scaler(configuration: config())
        _ = scaler.requestArrived(r(1), now: 0)
        _ = scaler.workerReady(w(1), now: 1)
        XCTAssertEqual(scaler.requestFinished(r(1), worker: w(1), now: 2),
                       [.scheduleIdleCheck(w(1), after: 60 * second)])
        XCTAssertEqual(scaler.requestArrived(r(2), now: 3), [.dispatch(r(2), to: w(1))])
        XCTAssertEqual(scaler.liveWorkerCount, 1)
    }

    func testLeastLoadedReadyWorkerWinsAndTiesGoToTheLowestID() {
        var scaler = Scaler(configuration: config(concurrency: 3, minWorkers: 2))
        XCTAssertEqual(scaler.start(now: 0), [
            .startWorker(w(1)), .scheduleStartupTimeout(w(1), after: 10 * second),
            .startWorker(w(2)), .scheduleStartupTimeout(w(2), after: 10 * second),
        ])
        _ = scaler.workerReady(w(2), now: 1)
        _ = scaler.workerReady(w(1), now: 1)
        XCTAssertEqual(scaler.requestArrived(r(1), now: 2), [.dispatch(r(1), to: w(1))], "tie: lowest id")
        XCTAssertEqual(scaler.requestArrived(r(2), now: 2), [.dispatch(r(2), to: w(2))], "least loaded")
        XCTAssertEqual(scaler.requestArrived(r(3), now: 2), [.dispatch(r(3), to: w(1))])
        _ = scaler.requestFinished(r(1), worker: w(1), now: 3)
        XCTAssertEqual(scaler.requestArrived(r(4), now: 3), [.dispatch(r(4), to: w(1))], "1 vs 1 in flight: lowest id")
    }

    func testFinishedRequestHandsItsSlotToTheOldestWaitingRequest() {
        var scaler = Scaler(configuration: config(maxWorkers: 1))
        _ = scaler.requestArrived(r(1), now: 0)
        XCTAssertEqual(scaler.requestArrived(r(2), now: 0), [], "at maxWorkers: wait, no second start")
        XCTAssertEqual(scaler.requestArrived(r(3), now: 0), [])
        XCTAssertEqual(scaler.workerReady(w(1), now: 1), [.dispatch(r(1), to: w(1))])
        XCTAssertEqual(scaler.requestFinished(r(1), worker: w(1), now: 2), [.dispatch(r(2), to: w(1))])
        XCTAssertEqual(scaler.requestFinished(r(2), worker: w(1), now: 3), [.dispatch(r(3), to: w(1))])
        XCTAssertEqual(scaler.requestFinished(r(3), worker: w(1), now: 4), [.scheduleIdleCheck(w(1), after: 60 * second)])
    }

    func testCancelledWaitingRequestIsNeverDispatched() {
        var scaler = Scaler(configuration: config(concurrency: 2))
        _ = scaler.requestArrived(r(1), now: 0)
        _ = scaler.requestArrived(r(2), now: 0)
        scaler.requestCancelled(r(1))
        XCTAssertEqual(scaler.queuedRequests, [r(2)])
        XCTAssertEqual(scaler.workerReady(w(1), now: 1), [.dispatch(r(2), to: w(1))])
    }

    // MARK: Burst

    func testBurstStartsOneWorkerPerConcurrencySlotUpToMaxWorkers() {
        var scaler = Scaler(configuration: config(concurrency: 1, maxWorkers: 4))
        var starts: [Scaler.WorkerID] = []
        for n in 1...32 {
            for case .startWorker(let id) in scaler.requestArrived(r(UInt64(n)), now: 0) { starts.append(id) }
            XCTAssertLessThanOrEqual(scaler.liveWorkerCount, 4)
        }
        XCTAssertEqual(starts, [w(1), w(2), w(3), w(4)])
        XCTAssertEqual(scaler.queueLength, 32)
        XCTAssertEqual(scaler.workerReady(w(3), now: 1), [.dispatch(r(1), to: w(3))], "FIFO, one per slot")
    }

    func testTwoRequestsPerWorkerWithConcurrencyTwo() {
        var scaler = Scaler(configuration: config(concurrency: 2, maxWorkers: 8))
        var starts = 0
        for n in 1...5 {
            for case .startWorker in scaler.requestArrived(r(UInt64(n)), now: 0) { starts += 1 }
        }
        XCTAssertEqual(starts, 3, "ceil(5 / 2)")
        XCTAssertEqual(scaler.workerReady(w(1), now: 1), [.dispatch(r(1), to: w(1)), .dispatch(r(2), to: w(1))])
    }

    func testConcurrencyZeroSendsEverythingToOneWorker() {
        var scaler = Scaler(configuration: config(concurrency: 0, maxWorkers: 4))
        XCTAssertEqual(scaler.requestArrived(r(1), now: 0).count, 2, "start + startup timeout")
        for n in 2...50 { XCTAssertEqual(scaler.requestArrived(r(UInt64(n)), now: 0), [], "one worker is enough") }
        let actions = scaler.workerReady(w(1), now: 1)
        XCTAssertEqual(Array(actions), (1...50).map { .dispatch(r(UInt64($0)), to: w(1)) })
        XCTAssertEqual(scaler.requestArrived(r(51), now: 2), [.dispatch(r(51), to: w(1))])
        XCTAssertEqual(scaler.liveWorkerCount, 1)
        XCTAssertEqual(scaler.worker(w(1))?.inFlight, 51)
    }

    // MARK: Queue limit

    func testFullQueueRejectsTheNextRequest() {
        var scaler = Scaler(configuration: config(maxWorkers: 1, queueLimit: 2))
        _ = scaler.requestArrived(r(1), now: 0)
        _ = scaler.requestArrived(r(2), now: 0)
        _ = scaler.requestArrived(r(3), now: 0)
        XCTAssertEqual(scaler.requestArrived(r(4), now: 0), [.reject(r(4), .queueFull)],
                       "one for the starting worker, then queueLimit more")
        XCTAssertEqual(scaler.queuedRequests, [r(1), r(2), r(3)])
        _ = scaler.workerReady(w(1), now: 1)
        XCTAssertEqual(scaler.queuedRequests, [r(2), r(3)], "the ready worker took one; nothing is on its way now")
        XCTAssertEqual(scaler.requestArrived(r(5), now: 1), [.reject(r(5), .queueFull)])
        _ = scaler.requestFinished(r(1), worker: w(1), now: 2)
        XCTAssertEqual(scaler.requestArrived(r(6), now: 2), [], "a slot in the queue freed up")
        XCTAssertEqual(scaler.requestArrived(r(7), now: 2), [.reject(r(7), .queueFull)])
    }

    /// Issue 14, item 11: a cold burst of 8 with maxWorkers 3 and queueLimit 2 got 6 answers of
    /// 503 because the requests waiting for starting workers counted against the queue limit.
    func testColdBurstStartsEveryWorkerItMayAndQueuesOnlyQueueLimitBeyondThem() {
        var scaler = Scaler(configuration: config(concurrency: 1, maxWorkers: 3, queueLimit: 2))
        var rejected: [Scaler.RequestID] = []
        var started: [Scaler.WorkerID] = []
        for n in 1...8 {
            for action in scaler.requestArrived(r(UInt64(n)), now: 0) {
                if case .reject(let request, .queueFull) = action { rejected.append(request) }
                if case .startWorker(let worker) = action { started.append(worker) }
            }
        }
        XCTAssertEqual(started, [w(1), w(2), w(3)], "the burst starts workers up to maxWorkers")
        XCTAssertEqual(rejected, [r(6), r(7), r(8)], "3 for the starting workers, 2 queued beyond them")
        for worker in started { _ = scaler.workerReady(worker, now: 1) }
        XCTAssertEqual(scaler.queuedRequests, [r(4), r(5)])
        XCTAssertEqual(scaler.inFlightCount, 3)
    }

    func testWithUnlimitedConcurrencyOnlyQueueLimitBoundsTheWait() {
        var scaler = Scaler(configuration: config(concurrency: 0, maxWorkers: 3, queueLimit: 2))
        _ = scaler.requestArrived(r(1), now: 0)
        _ = scaler.requestArrived(r(2), now: 0)
        XCTAssertEqual(scaler.requestArrived(r(3), now: 0), [.reject(r(3), .queueFull)])
        XCTAssertEqual(scaler.startingWorkerCount, 1)
    }

    // MARK: Warm-up (a new revision before it takes traffic)

    func testWarmUpStartsOneWorkerThatThenIdlesOutLikeAnyOther() {
        var scaler = Scaler(configuration: config(idleTimeout: 30 * second))
        XCTAssertEqual(scaler.warmUp(now: 0), [.startWorker(w(1)), .scheduleStartupTimeout(w(1), after: 10 * second)])
        XCTAssertTrue(scaler.isWarming)
        XCTAssertEqual(scaler.workerReady(w(1), now: 1 * second), [.scheduleIdleCheck(w(1), after: 30 * second)])
        XCTAssertFalse(scaler.isWarming)
        XCTAssertEqual(scaler.idleCheckFired(w(1), now: 31 * second), [.stopWorker(w(1))], "minWorkers 0: it is not kept")
    }

    func testWarmUpRetriesAFailedStartAfterTheBackoffAndSaysWhenItCrashLoops() {
        var scaler = Scaler(configuration: config())
        _ = scaler.warmUp(now: 0)
        XCTAssertEqual(scaler.workerExited(w(1), now: 10 * ms), [.scheduleRetry(after: 100 * ms)])
        XCTAssertEqual(scaler.retryFired(now: 110 * ms), [.startWorker(w(2)), .scheduleStartupTimeout(w(2), after: 10 * second)])
        XCTAssertEqual(scaler.workerExited(w(2), now: 120 * ms), [.scheduleRetry(after: 200 * ms)])
        _ = scaler.retryFired(now: 320 * ms)
        XCTAssertEqual(scaler.workerExited(w(3), now: 330 * ms), [.crashLooping(consecutiveFailures: 3), .scheduleRetry(after: 400 * ms)])
        XCTAssertTrue(scaler.isWarming)
        XCTAssertEqual(scaler.drain(), [], "a drained warm-up starts nothing more")
        XCTAssertEqual(scaler.retryFired(now: 800 * ms), [])
    }

    // MARK: Scale down

    func testIdleWorkerIsStoppedOnlyOnceIdleTimeoutHasPassed() {
        var scaler = Scaler(configuration: config(idleTimeout: 30 * second))
        _ = scaler.requestArrived(r(1), now: 0)
        _ = scaler.workerReady(w(1), now: 1 * second)
        XCTAssertEqual(scaler.requestFinished(r(1), worker: w(1), now: 2 * second),
                       [.scheduleIdleCheck(w(1), after: 30 * second)])
        XCTAssertEqual(scaler.worker(w(1))?.idleSince, 2 * second)
        XCTAssertEqual(scaler.idleCheckFired(w(1), now: 32 * second), [.stopWorker(w(1))])
        XCTAssertEqual(scaler.worker(w(1))?.state, .stopping)
        XCTAssertEqual(scaler.workerExited(w(1), now: 33 * second), [])
        XCTAssertEqual(scaler.liveWorkerCount, 0, "scaled to zero")
        XCTAssertEqual(scaler.requestArrived(r(2), now: 40 * second),
                       [.startWorker(w(2)), .scheduleStartupTimeout(w(2), after: 10 * second)])
    }

    func testEarlyIdleCheckReschedulesForTheRemainingTime() {
        var scaler = Scaler(configuration: config(idleTimeout: 30 * second))
        _ = scaler.requestArrived(r(1), now: 0)
        _ = scaler.workerReady(w(1), now: 0)
        _ = scaler.requestFinished(r(1), worker: w(1), now: 0)
        XCTAssertEqual(scaler.idleCheckFired(w(1), now: 29 * second), [.scheduleIdleCheck(w(1), after: 1 * second)])
        XCTAssertEqual(scaler.idleCheckFired(w(1), now: 30 * second), [.stopWorker(w(1))])
    }

    func testWorkerWithRequestsInFlightIsNeverStoppedForIdleness() {
        var scaler = Scaler(configuration: config(concurrency: 2, idleTimeout: 30 * second))
        _ = scaler.requestArrived(r(1), now: 0)
        _ = scaler.workerReady(w(1), now: 0)
        _ = scaler.requestFinished(r(1), worker: w(1), now: 0)   // idle check due at 30s
        _ = scaler.requestArrived(r(2), now: 10 * second)        // busy again, for a long time
        XCTAssertEqual(scaler.idleCheckFired(w(1), now: 100 * second), [])
        XCTAssertEqual(scaler.worker(w(1))?.state, .ready)
        XCTAssertNil(scaler.worker(w(1))?.idleSince)
    }

    func testStaleIdleCheckFromAnEarlierIdlePeriodDoesNothing() {
        var scaler = Scaler(configuration: config(idleTimeout: 30 * second))
        _ = scaler.requestArrived(r(1), now: 0)
        _ = scaler.workerReady(w(1), now: 0)
        _ = scaler.requestFinished(r(1), worker: w(1), now: 0)              // check #1 due at 30s
        _ = scaler.requestArrived(r(2), now: 20 * second)
        XCTAssertEqual(scaler.requestFinished(r(2), worker: w(1), now: 25 * second),
                       [.scheduleIdleCheck(w(1), after: 30 * second)])      // check #2 due at 55s
        XCTAssertEqual(scaler.idleCheckFired(w(1), now: 30 * second), [], "idle only 5s; check #2 is still coming")
        XCTAssertEqual(scaler.worker(w(1))?.state, .ready)
        XCTAssertEqual(scaler.idleCheckFired(w(1), now: 55 * second), [.stopWorker(w(1))])
    }

    func testMinWorkersStartAtDeployAndAreNotStoppedWhenIdle() {
        var scaler = Scaler(configuration: config(minWorkers: 1, idleTimeout: 30 * second))
        XCTAssertEqual(scaler.start(now: 0), [.startWorker(w(1)), .scheduleStartupTimeout(w(1), after: 10 * second)])
        XCTAssertEqual(scaler.workerReady(w(1), now: 1), [.scheduleIdleCheck(w(1), after: 30 * second)])
        XCTAssertEqual(scaler.idleCheckFired(w(1), now: 60 * second), [], "the last worker is kept for minWorkers")
        XCTAssertEqual(scaler.worker(w(1))?.state, .ready)
    }

    func testSurplusWorkerIsStoppedButMinWorkersKept() {
        var scaler = Scaler(configuration: config(minWorkers: 1, idleTimeout: 30 * second))
        _ = scaler.start(now: 0)
        _ = scaler.workerReady(w(1), now: 0)
        _ = scaler.requestArrived(r(1), now: 1 * second)                      // w1 busy
        XCTAssertEqual(scaler.requestArrived(r(2), now: 1 * second),
                       [.startWorker(w(2)), .scheduleStartupTimeout(w(2), after: 10 * second)])
        _ = scaler.workerReady(w(2), now: 2 * second)
        _ = scaler.requestFinished(r(2), worker: w(2), now: 3 * second)
        _ = scaler.requestFinished(r(1), worker: w(1), now: 4 * second)
        XCTAssertEqual(scaler.idleCheckFired(w(2), now: 33 * second), [.stopWorker(w(2))])
        XCTAssertEqual(scaler.idleCheckFired(w(1), now: 34 * second), [], "w1 is the minimum now")
        XCTAssertEqual(scaler.readyWorkerCount, 1)
    }

    func testMinWorkersAreReplacedWhenOneExits() {
        var scaler = Scaler(configuration: config(minWorkers: 2))
        _ = scaler.start(now: 0)
        _ = scaler.workerReady(w(1), now: 0)
        _ = scaler.workerReady(w(2), now: 0)
        XCTAssertEqual(scaler.workerExited(w(1), now: 5 * second),
                       [.startWorker(w(3)), .scheduleStartupTimeout(w(3), after: 10 * second)])
    }

    func testStoppingWorkersCountTowardMaxWorkers() {
        var scaler = Scaler(configuration: config(maxWorkers: 1, idleTimeout: 30 * second))
        _ = scaler.requestArrived(r(1), now: 0)
        _ = scaler.workerReady(w(1), now: 0)
        _ = scaler.requestFinished(r(1), worker: w(1), now: 0)
        XCTAssertEqual(scaler.idleCheckFired(w(1), now: 30 * second), [.stopWorker(w(1))])
        XCTAssertEqual(scaler.requestArrived(r(2), now: 31 * second), [], "w1 is still a live process")
        XCTAssertEqual(scaler.liveWorkerCount, 1)
        XCTAssertEqual(scaler.workerExited(w(1), now: 32 * second),
                       [.startWorker(w(2)), .scheduleStartupTimeout(w(2), after: 10 * second)])
        XCTAssertEqual(scaler.workerReady(w(2), now: 33 * second), [.dispatch(r(2), to: w(2))])
    }

    // MARK: Crashes

    func testCrashOfAReadyWorkerWithWaitingRequestsStartsAReplacementAtOnce() {
        var scaler = Scaler(configuration: config(maxWorkers: 1))
        _ = scaler.requestArrived(r(1), now: 0)
        _ = scaler.requestArrived(r(2), now: 0)
        _ = scaler.workerReady(w(1), now: 0)
        XCTAssertEqual(scaler.workerExited(w(1), now: 5 * ms),
                       [.startWorker(w(2)), .scheduleStartupTimeout(w(2), after: 10 * second)],
                       "no backoff: the worker had come up fine")
        XCTAssertEqual(scaler.consecutiveStartFailures, 0)
        XCTAssertEqual(scaler.requestFinished(r(1), worker: w(1), now: 6 * ms), [], "its lost request is forgotten")
        XCTAssertEqual(scaler.workerReady(w(2), now: 10 * ms), [.dispatch(r(2), to: w(2))])
    }

    func testCrashOfAnIdleReadyWorkerStartsNothing() {
        var scaler = Scaler(configuration: config())
        _ = scaler.requestArrived(r(1), now: 0)
        _ = scaler.workerReady(w(1), now: 0)
        _ = scaler.requestFinished(r(1), worker: w(1), now: 1)
        XCTAssertEqual(scaler.workerExited(w(1), now: 2), [])
        XCTAssertEqual(scaler.idleCheckFired(w(1), now: 60 * second), [], "timer of a gone worker")
    }

    func testCrashesAtStartupBackOffDoublingAndReportCrashLoopingFromTheThird() {
        var scaler = Scaler(configuration: config(crashBackoff: (100 * ms, 1 * second)))
        _ = scaler.requestArrived(r(1), now: 0)
        var now: UInt64 = 0
        var worker: UInt64 = 1
        let expected: [(UInt64, Bool)] = [
            (100 * ms, false), (200 * ms, false), (400 * ms, true), (800 * ms, true), (1 * second, true), (1 * second, true),
        ]
        for (failures, (delay, looping)) in zip(1..., expected) {
            now += 10 * ms
            var want: Scaler.Actions = looping ? [.crashLooping(consecutiveFailures: failures)] : []
            want.append(contentsOf: [.scheduleRetry(after: delay)])
            XCTAssertEqual(scaler.workerExited(w(worker), now: now), want, "failure \(failures)")
            XCTAssertEqual(scaler.consecutiveStartFailures, failures)
            XCTAssertEqual(scaler.liveWorkerCount, 0)
            XCTAssertEqual(scaler.queuedRequests, [r(1)], "the request keeps waiting through the backoff")
            now += delay
            worker += 1
            XCTAssertEqual(scaler.retryFired(now: now),
                           [.startWorker(w(worker)), .scheduleStartupTimeout(w(worker), after: 10 * second)])
        }
        XCTAssertEqual(scaler.workerReady(w(worker), now: now + 1), [.dispatch(r(1), to: w(worker))])
        XCTAssertEqual(scaler.consecutiveStartFailures, 0, "a worker that comes up resets the backoff")
    }

    func testRequestDuringTheBackoffSchedulesTheRetryInsteadOfStarting() {
        var scaler = Scaler(configuration: config(crashBackoff: (100 * ms, 10 * second)))
        _ = scaler.requestArrived(r(1), now: 0)
        scaler.requestCancelled(r(1))
        XCTAssertEqual(scaler.workerExited(w(1), now: 0), [], "nothing waits: no retry needed yet")
        XCTAssertEqual(scaler.requestArrived(r(2), now: 30 * ms), [.scheduleRetry(after: 70 * ms)])
        XCTAssertEqual(scaler.requestArrived(r(3), now: 40 * ms), [], "one retry timer is enough")
        XCTAssertEqual(scaler.retryFired(now: 100 * ms), [
            .startWorker(w(2)), .scheduleStartupTimeout(w(2), after: 10 * second),
            .startWorker(w(3)), .scheduleStartupTimeout(w(3), after: 10 * second),
        ], "as many as the two waiting requests need")
    }

    func testRetryArrivingBeforeALongerBackoffEndsIsRescheduled() {
        var scaler = Scaler(configuration: config(concurrency: 1, maxWorkers: 2))
        _ = scaler.requestArrived(r(1), now: 0)
        _ = scaler.requestArrived(r(2), now: 0)
        XCTAssertEqual(scaler.workerExited(w(1), now: 0), [.scheduleRetry(after: 100 * ms)])
        XCTAssertEqual(scaler.workerExited(w(2), now: 0), [], "backoff now 200ms, a retry is already pending")
        XCTAssertEqual(scaler.retryFired(now: 100 * ms), [.scheduleRetry(after: 100 * ms)])
        XCTAssertEqual(scaler.retryFired(now: 200 * ms), [
            .startWorker(w(3)), .scheduleStartupTimeout(w(3), after: 10 * second),
            .startWorker(w(4)), .scheduleStartupTimeout(w(4), after: 10 * second),
        ])
    }

    // MARK: Startup timeout

    func testStartupTimeoutKillsTheWorkerAndFailsTheWaitingRequests() {
        var scaler = Scaler(configuration: config(concurrency: 2))
        _ = scaler.requestArrived(r(1), now: 0)
        _ = scaler.requestArrived(r(2), now: 0)
        XCTAssertEqual(scaler.startupTimeoutFired(w(1), now: 10 * second),
                       [.killWorker(w(1)), .fail(r(1), .startupTimeout), .fail(r(2), .startupTimeout)])
        XCTAssertEqual(scaler.queueLength, 0)
        XCTAssertEqual(scaler.consecutiveStartFailures, 1, "counts as a failed start")
        XCTAssertEqual(scaler.worker(w(1))?.state, .stopping)
        XCTAssertEqual(scaler.workerReady(w(1), now: 10 * second + 1), [], "too late: it is being killed")
        XCTAssertEqual(scaler.workerExited(w(1), now: 10 * second + 2), [], "not counted twice, nothing to replace")
        XCTAssertEqual(scaler.consecutiveStartFailures, 1)
        XCTAssertEqual(scaler.requestArrived(r(3), now: 10 * second + 50 * ms), [.scheduleRetry(after: 50 * ms)])
    }

    func testStartupTimeoutWhileAnotherWorkerIsStartingKeepsRequestsWaiting() {
        var scaler = Scaler(configuration: config(concurrency: 1, maxWorkers: 2))
        _ = scaler.requestArrived(r(1), now: 0)
        _ = scaler.requestArrived(r(2), now: 1 * second)
        XCTAssertEqual(scaler.startupTimeoutFired(w(1), now: 10 * second),
                       [.killWorker(w(1))], "w1's process still holds the second slot until it exits")
        XCTAssertEqual(scaler.queuedRequests, [r(1), r(2)])
        XCTAssertEqual(scaler.workerReady(w(2), now: 10 * second + 1 * ms), [.dispatch(r(1), to: w(2))])
        XCTAssertEqual(scaler.startupTimeoutFired(w(2), now: 11 * second), [], "stale: w2 is ready")
        XCTAssertEqual(scaler.workerExited(w(1), now: 10 * second + 2 * ms),
                       [.startWorker(w(3)), .scheduleStartupTimeout(w(3), after: 10 * second)],
                       "w2 came up, so the backoff is over; w1's slot is free again")
    }

    // MARK: Drain

    func testDrainRequeuesWaitingStopsIdleAndFinishesAfterBusyWorkersEnd() {
        var scaler = Scaler(configuration: config(concurrency: 1, maxWorkers: 3))
        _ = scaler.requestArrived(r(1), now: 0)
        _ = scaler.requestArrived(r(2), now: 0)
        _ = scaler.requestArrived(r(3), now: 0)
        _ = scaler.requestArrived(r(4), now: 0)
        _ = scaler.workerReady(w(1), now: 1)        // r1
        _ = scaler.workerReady(w(2), now: 1)        // r2
        _ = scaler.requestFinished(r(2), worker: w(2), now: 2)   // r3 → w2
        XCTAssertEqual(scaler.queuedRequests, [r(4)])
        _ = scaler.requestFinished(r(3), worker: w(2), now: 3)   // r4 → w2
        _ = scaler.requestFinished(r(4), worker: w(2), now: 4)   // w2 idle
        _ = scaler.requestArrived(r(5), now: 5)                  // → w2
        _ = scaler.requestFinished(r(5), worker: w(2), now: 6)   // w2 idle
        _ = scaler.requestArrived(r(6), now: 7)                  // → w2
        _ = scaler.requestArrived(r(7), now: 7)                  // waits (w3 starting)
        XCTAssertEqual(scaler.worker(w(3))?.state, .starting)

        XCTAssertEqual(scaler.drain(), [.requeueElsewhere([r(7)]), .stopWorker(w(3))])
        XCTAssertEqual(scaler.worker(w(1))?.state, .draining)
        XCTAssertEqual(scaler.worker(w(2))?.state, .draining)
        XCTAssertEqual(scaler.requestArrived(r(8), now: 8), [.reject(r(8), .draining)])
        XCTAssertEqual(scaler.workerReady(w(3), now: 8), [], "a stopped starting worker takes nothing")

        XCTAssertEqual(scaler.requestFinished(r(1), worker: w(1), now: 9), [.stopWorker(w(1))])
        XCTAssertEqual(scaler.workerExited(w(1), now: 10), [], "no replacement while draining")
        XCTAssertEqual(scaler.workerExited(w(3), now: 10), [], "no backoff, no retry while draining")
        XCTAssertFalse(scaler.isFinished, "w2 still serves r6")
        XCTAssertEqual(scaler.requestFinished(r(6), worker: w(2), now: 11), [.stopWorker(w(2))])
        XCTAssertEqual(scaler.workerExited(w(2), now: 12), [])
        XCTAssertTrue(scaler.isFinished)
    }

    func testDrainOfAnIdleRevisionStopsEverythingAtOnce() {
        var scaler = Scaler(configuration: config(minWorkers: 2))
        _ = scaler.start(now: 0)
        _ = scaler.workerReady(w(1), now: 0)
        _ = scaler.workerReady(w(2), now: 0)
        XCTAssertEqual(scaler.drain(), [.stopWorker(w(1)), .stopWorker(w(2))])
        XCTAssertEqual(scaler.drain(), [], "draining twice changes nothing")
        XCTAssertEqual(scaler.idleCheckFired(w(1), now: 60 * second), [])
        _ = scaler.workerExited(w(1), now: 1)
        XCTAssertEqual(scaler.workerExited(w(2), now: 1), [], "minWorkers no longer applies")
        XCTAssertTrue(scaler.isFinished)
    }

    // MARK: Actions

    func testActionsCompareByContentsWhateverTheirLength() {
        var actions = Scaler.Actions()
        XCTAssertTrue(actions.isEmpty)
        let all: [Scaler.Action] = [.startWorker(w(1)), .stopWorker(w(2)), .killWorker(w(3)), .scheduleRetry(after: 4)]
        for action in all { actions.append(contentsOf: [action]) }
        XCTAssertEqual(Array(actions), all)
        XCTAssertEqual(actions, [.startWorker(w(1)), .stopWorker(w(2)), .killWorker(w(3)), .scheduleRetry(after: 4)])
        XCTAssertNotEqual(actions, [.startWorker(w(1)), .stopWorker(w(2)), .killWorker(w(3))])
    }
}
