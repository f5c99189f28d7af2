/// The bytes of request bodies waiting for a worker, bounded by `queueBodyLimit`: called from
/// any event loop, so an atomic rather than the home loop's state.
extension FunctionInstance {
    public func holdWaitingBody(_ bytes: Int) -> Bool {
        var current = waitingBodyBytes.load(ordering: .relaxed)
        while true {
            let (next, overflow) = current.addingReportingOverflow(bytes)
            guard !overflow, next <= manifest.queueBodyLimit else { return false }
            let (exchanged, original) = waitingBodyBytes.compareExchange(expected: current, desired: next, ordering: .relaxed)
            if exchanged { return true }
            current = original
        }
    }

    public func releaseWaitingBody(_ bytes: Int) {
        _ = waitingBodyBytes.subtract(bytes, ordering: .relaxed)
    }
}
