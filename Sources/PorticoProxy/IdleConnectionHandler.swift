import NIOCore

/// The clock behind an idle timeout: notes when traffic last passed, and calls `onIdle` when
/// a whole timeout has gone by without any (and again every timeout after that). One timer
/// per connection, rescheduled only when it fires, so traffic costs a clock read and no
/// timer work.
final class IdleTimer {
    let timeout: TimeAmount
    private var lastActivity = NIODeadline.uptimeNanoseconds(0)
    private var timer: Scheduled<Void>?
    /// The loop's clock, so a test's `EmbeddedEventLoop` can move time.
    private var loop: EventLoop?
    private var onIdle: (() -> Void)?

    init(timeout: TimeAmount) {
        self.timeout = timeout
    }

    @inline(__always)
    func noteActivity() {
        lastActivity = loop?.now ?? .now()
    }

    /// Starts the clock unless it runs. `onIdle` runs on `loop`; it is let go by `stop()`,
    /// which the owner calls when its channel closes or it leaves the pipeline.
    func start(on loop: EventLoop, onIdle: @escaping () -> Void) {
        guard timer == nil else { return }
        self.loop = loop
        self.onIdle = onIdle
        lastActivity = loop.now
        schedule(at: lastActivity + timeout)
    }

    /// Starts the clock for a handler's channel (now if it is active, else when it becomes
    /// so), telling the handler after it with an `IdleStateHandler.IdleStateEvent.all`.
    func start(firingEventsFrom context: ChannelHandlerContext) {
        start(on: context.eventLoop) {
            guard context.channel.isActive else { return }
            context.fireUserInboundEventTriggered(IdleStateHandler.IdleStateEvent.all)
        }
    }

    func stop() {
        timer?.cancel()
        timer = nil
        onIdle = nil
    }

    private func schedule(at deadline: NIODeadline) {
        // Strong until it runs or `stop()` cancels it: a weak reference would give this object a
        // side table, and every retain and release of it would take the runtime's slow path.
        timer = loop?.assumeIsolated().scheduleTask(deadline: deadline) { self.fired() }
    }

    private func fired() {
        guard let loop, let onIdle else { return }
        let now = loop.now
        if now - lastActivity >= timeout {
            schedule(at: now + timeout)
            onIdle()
        } else {
            schedule(at: lastActivity + timeout)
        }
    }
}

/// Closes nothing itself: fires `IdleStateHandler.IdleStateEvent.all` down the pipeline when a
/// connection has neither read nor written for `timeout`, and again every `timeout` after that.
///
/// It replaces NIO's `IdleStateHandler(allTimeout:)` because that one attaches a promise to
/// every write to learn when it completes, which costs allocations on every response; here a
/// write counts when it is issued, which is what "no traffic" needs. The HTTP/1 handlers keep
/// their own `IdleTimer`; this handler serves connections that left HTTP (upgrades).
final class IdleConnectionHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny
    typealias OutboundIn = NIOAny

    private let idle: IdleTimer

    init(timeout: TimeAmount) {
        self.idle = IdleTimer(timeout: timeout)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { idle.start(firingEventsFrom: context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        idle.start(firingEventsFrom: context)
        context.fireChannelActive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        idle.stop()
    }

    func channelInactive(context: ChannelHandlerContext) {
        idle.stop()
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        idle.noteActivity()
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        idle.noteActivity()
        context.write(data, promise: promise)
    }
}
