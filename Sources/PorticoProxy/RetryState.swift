import NIOCore
import PorticoConfig

/// What a request on a route with `retries` carries for them.
final class RetryState {
    let compiled: CompiledRetries
    /// The retry budget's key: the service's name, or `function:NAME`.
    let budgetKey: String
    var retriesDone = 0
    /// Every body byte received so far, copied into one buffer while it fits: slices of the
    /// received buffers would keep each whole receive buffer alive.
    var replay: ByteBuffer?
    var replayable = true
    var perTryTask: Scheduled<Void>?
    var backoffTask: Scheduled<Void>?
    /// With a backend that bounds each try from its lease (a function): the route's timeout
    /// over all tries, from the first try's lease.
    var overallTask: Scheduled<Void>?

    init(compiled: CompiledRetries, budgetKey: String) {
        self.compiled = compiled
        self.budgetKey = budgetKey
    }

    func keep(_ buffer: ByteBuffer) {
        guard replayable else { return }
        if (replay?.readableBytes ?? 0) + buffer.readableBytes > compiled.replayBuffer {
            replayable = false
            replay = nil
        } else {
            if replay == nil { replay = ByteBufferAllocator().buffer(capacity: buffer.readableBytes) }
            replay!.writeImmutableBuffer(buffer)
        }
    }

    func cancelTimers() {
        perTryTask?.cancel()
        perTryTask = nil
        backoffTask?.cancel()
        backoffTask = nil
        overallTask?.cancel()
        overallTask = nil
    }
}
