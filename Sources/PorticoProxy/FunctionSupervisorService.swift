import ServiceLifecycle

/// The functions' workers: keeps the deployed functions in step with the functions folder, and
/// at shutdown drains every revision and stops its workers (SIGTERM, then SIGKILL after the
/// function's grace period).
public struct FunctionSupervisorService: Service {
    let gateway: Gateway

    public init(gateway: Gateway) { self.gateway = gateway }

    public func run() async throws {
        guard let functions = gateway.functions else {
            try? await gracefulShutdown()
            return
        }
        functions.startWatching()
        try? await gracefulShutdown()
        await functions.shutdown()
    }
}
