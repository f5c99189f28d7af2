import ServiceLifecycle

/// Every listener of the config, as one service: opens them once the jwt key sets are loaded
/// and the functions deployed, and at shutdown stops accepting on all of them at once, then
/// drains their connections (within the config's `drainTimeout`).
///
/// One service for all listeners, not one each: the group stops its services one at a time,
/// so listeners as separate services would each wait out the drain of the one before, still
/// accepting meanwhile.
public struct ListenerService: Service {
    let gateway: Gateway

    public init(gateway: Gateway) { self.gateway = gateway }

    public func run() async throws {
        try await gateway.loadKeys()
        // Deployed before the listeners open, so the first request can reach a function;
        // `FunctionSupervisorService` keeps them in step with the folder afterwards.
        await gateway.functions?.deployNow()
        // A SIGTERM during the deploy (a long build): nothing to open, nothing to drain.
        if Task.isShuttingDownGracefully || Task.isCancelled { return }
        let listeners = try await gateway.openListeners()
        try? await gracefulShutdown()
        await gateway.drain(listeners)
    }
}
