import NIOCore

/// The clock behind an idle timeout: notes when traffic last passed, and tells its owner when
/// a whole timeout has gone by without any. One timer per connection, rescheduled only when
/// it fires, so traffic costs a clock read and no timer work.
struct IdleTimer {
    let timeout: TimeAmount
    var lastActivity = NIODeadline.uptimeNanoseconds(0)
    private var timer: Scheduled<Void>?
    /// The loop's clock, so a test's `EmbeddedEventLoop` can move time.
    private var loop: EventLoop?

    init(timeout: TimeAmount) {
        self.timeout = timeout
    }

    @inline(__always)
    mutating func noteActivity() {
        lastActivity = loop?.now ?? .now()
    }

    /// Starts the timer unless it runs; `fire` runs on `loop` when it goes off and should call
    /// `fired(on:fire:)`.
    mutating func start(on loop: EventLoop, fire: @escaping () -> Void) {
        guard timer == nil else { return }
        self.loop = loop
        lastActivity = loop.now
        timer = loop.assumeIsolated().scheduleTask(deadline: lastActivity + timeout, fire)
    }

    mutating func stop() {
        timer?.cancel()
        timer = nil
    }

    /// Reschedules itself, and says whether nothing passed for the whole timeout.
    mutating func fired(on loop: EventLoop, fire: @escaping () -> Void) -> Bool {
        let now = loop.now
        let idle = now - lastActivity >= timeout
        timer = loop.assumeIsolated().scheduleTask(deadline: idle ? now + timeout : lastActivity + timeout, fire)
        return idle
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

    private var idle: IdleTimer

    init(timeout: TimeAmount) {
        self.idle = IdleTimer(timeout: timeout)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { start(context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        start(context)
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

    private func start(_ context: ChannelHandlerContext) {
        idle.start(on: context.eventLoop) { [weak self] in self?.check(context) }
    }

    private func check(_ context: ChannelHandlerContext) {
        guard context.channel.isActive else { return }
        if idle.fired(on: context.eventLoop, fire: { [weak self] in self?.check(context) }) {
            context.fireUserInboundEventTriggered(IdleStateHandler.IdleStateEvent.all)
        }
    }
}
