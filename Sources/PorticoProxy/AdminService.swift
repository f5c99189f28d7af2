import ServiceLifecycle

/// The admin API's listener, when the config has one. It stops after the listeners have
/// drained, so `/ready` answers 503 to a load balancer throughout the drain.
public struct AdminService: Service {
    let gateway: Gateway

    public init(gateway: Gateway) { self.gateway = gateway }

    public func run() async throws {
        guard let admin = gateway.snapshot.config.admin else {
            try? await gracefulShutdown()
            return
        }
        let channel = try await gateway.openAdmin(admin)
        try? await gracefulShutdown()
        try? await channel.close()
    }
}
