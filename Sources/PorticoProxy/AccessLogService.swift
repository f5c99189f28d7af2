import ServiceLifecycle

/// The access-log writer's thread. At shutdown it first collects every event loop's batched
/// lines, then writes out everything queued before it stops, so the last requests are logged.
public struct AccessLogService: Service {
    let gateway: Gateway

    public init(gateway: Gateway) { self.gateway = gateway }

    public func run() async throws {
        gateway.accessLogWriter?.start()
        try? await gracefulShutdown()
        await gateway.flushAccessLogs()
        await gateway.accessLogWriter?.stop()
    }
}
