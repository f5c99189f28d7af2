import ServiceLifecycle

/// Runs config reloads, one at a time and in the order asked, for everything that asks: the
/// config watcher, SIGHUP and the admin API's `POST /reload`.
public struct ReloadService: Service {
    let gateway: Gateway

    public init(gateway: Gateway) { self.gateway = gateway }

    public func run() async {
        await gateway.serveReloads()
    }
}
