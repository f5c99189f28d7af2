import NIOCore

/// Calls its owner back at, or just after, the earliest deadline it was asked to wake by, on
/// one event-loop timer that moves only when it must fire sooner.
///
/// A request's timeout is set when the request starts and cleared when its answer ends. As a
/// timer of its own, scheduled and cancelled every time, it cost NIO a lock, a heap insert and
/// a linear search of all pending timers per request. Here the owner keeps its deadline itself
/// and checks it when woken: passed, it acts; still ahead (a later request's), it asks to be
/// woken by it again. A connection's requests then share one timer that fires about once per
/// timeout period while they keep coming.
final class WakeupTimer {
    private let loop: EventLoop
    private var onWake: (() -> Void)?
    private var task: Scheduled<Void>?
    private var firesAt = NIODeadline.distantFuture

    init(loop: EventLoop, onWake: @escaping () -> Void) {
        self.loop = loop
        self.onWake = onWake
    }

    /// Makes sure the owner is woken no later than `deadline`.
    func wake(by deadline: NIODeadline) {
        if task != nil, firesAt <= deadline { return }
        task?.cancel()
        firesAt = deadline
        task = loop.assumeIsolated().scheduleTask(deadline: deadline) { [weak self] in self?.fired() }
    }

    /// Cancels the timer for good; the owner calls it when it leaves.
    func stop() {
        task?.cancel()
        task = nil
        onWake = nil
    }

    private func fired() {
        task = nil
        firesAt = .distantFuture
        onWake?()
    }
}
