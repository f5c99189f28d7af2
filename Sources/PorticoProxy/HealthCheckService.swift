import ServiceLifecycle

/// The services' active health checks and outlier-detection intervals, on the admin loop.
/// Reloads start and stop the checks of the services they add and remove while this runs.
public struct HealthCheckService: Service {
    let gateway: Gateway

    public init(gateway: Gateway) { self.gateway = gateway }

    public func run() async throws {
        gateway.startHealthChecks()
        try? await gracefulShutdown()
        gateway.stopHealthChecks()
    }
}
