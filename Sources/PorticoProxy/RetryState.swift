import NIOCore
import PorticoConfig

/// What a request on a route with `retries` carries for them (the machine counts the tries
/// and decides; this holds the bytes and the timers).
final class RetryState {
    let compiled: CompiledRetries
    /// The retry budget's key: the service's name, or `function:NAME`.
    let budgetKey: String
    /// Every body byte received so far, copied into one buffer while it fits: slices of the
    /// received buffers would keep each whole receive buffer alive.
    var replay: ByteBuffer?
    var perTryTask: Scheduled<Void>?
    var backoffTask: Scheduled<Void>?
    /// With a backend that bounds each try from its lease (a function): the route's timeout
    /// over all tries, from the first try's lease.
    var overallTask: Scheduled<Void>?

    init(compiled: CompiledRetries, budgetKey: String) {
        self.compiled = compiled
        self.budgetKey = budgetKey
    }

    /// Keeps `buffer` for a retry, or, once the machine says the body is past the replay
    /// limit, lets go of what was kept.
    func keep(_ buffer: ByteBuffer, forReplay: Bool) {
        guard forReplay else {
            replay = nil
            return
        }
        if replay == nil { replay = ByteBufferAllocator().buffer(capacity: buffer.readableBytes) }
        replay!.writeImmutableBuffer(buffer)
    }

    func cancelPerTryTimer() {
        perTryTask?.cancel()
        perTryTask = nil
    }

    func cancelTimers() {
        cancelPerTryTimer()
        backoffTask?.cancel()
        backoffTask = nil
        overallTask?.cancel()
        overallTask = nil
    }
}
