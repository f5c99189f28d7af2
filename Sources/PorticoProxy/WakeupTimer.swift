import NIOCore

/// Calls its owner back at, or just after, the earliest deadline it was asked to wake by, on
/// one event-loop timer that moves only when it must fire sooner.
///
/// The owner (a `DeadlineSweeper`) keeps the deadlines itself and checks them when woken, then
/// asks to be woken by the next one. Asking for a later deadline than the pending one costs
/// nothing, so a stream of requests whose timeouts are set and cleared needs no timer work
/// for each of them.
final class WakeupTimer {
    private let loop: EventLoop
    private var onWake: (() -> Void)?
    private var task: Scheduled<Void>?
    private var firesAt = NIODeadline.distantFuture
    /// Tells the current task from one that was cancelled too late to stop it running.
    private var generation = 0

    init(loop: EventLoop, onWake: @escaping () -> Void) {
        self.loop = loop
        self.onWake = onWake
    }

    /// Makes sure the owner is woken no later than `deadline`.
    func wake(by deadline: NIODeadline) {
        if task != nil, firesAt <= deadline { return }
        task?.cancel()
        firesAt = deadline
        generation &+= 1
        let current = generation
        // Held strongly until it runs or is cancelled: a weak reference would give this object
        // a side table, and every retain and release of it would take the runtime's slow path.
        task = loop.assumeIsolated().scheduleTask(deadline: deadline) { self.fired(current) }
    }

    /// Cancels the timer for good; the owner calls it when it leaves.
    func stop() {
        task?.cancel()
        task = nil
        onWake = nil
    }

    /// Lets go of the owner without touching the loop (which may have shut down): a pending
    /// task still runs, and does nothing.
    func forgetOwner() {
        onWake = nil
    }

    private func fired(_ firedGeneration: Int) {
        guard firedGeneration == generation else { return }
        task = nil
        firesAt = .distantFuture
        onWake?()
    }
}

/// Something with a deadline that a `DeadlineSweeper` watches.
protocol DeadlineWatched: AnyObject {
    /// When it times out; nil when it is not watched. Set only by the sweeper.
    var deadline: NIODeadline? { get set }
    /// Its place in the sweeper's list, -1 when not watched. Set only by the sweeper.
    var watchSlot: Int { get set }
    /// The deadline came before `unwatch`. Called on the loop, after the member left the list.
    func deadlinePassed()
}

/// The request timeouts of one event loop, on one `WakeupTimer`.
///
/// Starting and ending a watch is an append and a swap-remove, with no timer work unless the
/// new deadline is the earliest. An HTTP/2 stream's handler lives for one request, so a timer
/// per handler would be scheduled and cancelled per request again, and NIO cancels by a linear
/// search of all its pending timers (hundreds, with many streams in flight).
final class DeadlineSweeper<Member: DeadlineWatched> {
    private let loop: EventLoop
    private var watched: [Member] = []
    private var timer: WakeupTimer!

    init(loop: EventLoop) {
        self.loop = loop
        // Unowned, not weak (see `WakeupTimer.wake`); `deinit` takes the callback back, so the
        // timer never calls a sweeper that is gone.
        timer = WakeupTimer(loop: loop) { [unowned self] in self.sweep() }
    }

    deinit {
        // Not `stop()`: a loop context goes after its event loop has shut down, and cancelling
        // a task there is a fatal error in NIO.
        timer.forgetOwner()
    }

    var watchedCount: Int { watched.count }

    /// Watches `member` until `deadline` (a member already watched gets the new deadline).
    func watch(_ member: Member, until deadline: NIODeadline) {
        if member.watchSlot < 0 {
            member.watchSlot = watched.count
            watched.append(member)
        }
        member.deadline = deadline
        timer.wake(by: deadline)
    }

    func unwatch(_ member: Member) {
        let slot = member.watchSlot
        guard slot >= 0, slot < watched.count, watched[slot] === member else { return }
        let last = watched.removeLast()
        if last !== member {
            watched[slot] = last
            last.watchSlot = slot
        }
        member.watchSlot = -1
        member.deadline = nil
    }

    private func sweep() {
        let now = loop.now
        var expired: [Member] = []
        var next = NIODeadline.distantFuture
        for member in watched {
            guard let deadline = member.deadline else { continue }
            if deadline <= now {
                expired.append(member)
            } else if deadline < next {
                next = deadline
            }
        }
        for member in expired {
            // An earlier member's callback may have ended this watch, or moved its deadline.
            guard member.watchSlot >= 0, let deadline = member.deadline, deadline <= now else { continue }
            unwatch(member)
            member.deadlinePassed()
        }
        if next != .distantFuture { timer.wake(by: next) }
    }
}
