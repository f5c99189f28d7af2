import Foundation
import Logging
import PorticoProxy
import ServiceLifecycle
import XCTest

/// A gateway run in-process the way `portico serve` runs it: its services in one group, here
/// without the signal handlers and the config watcher.
final class RunningGateway {
    let gateway: Gateway
    private let group: ServiceGroup
    private let finished = DispatchSemaphore(value: 0)

    init(_ gateway: Gateway, logger: Logger) {
        self.gateway = gateway
        func inOrder(_ service: any Service) -> ServiceGroupConfiguration.ServiceConfiguration {
            .init(service: service, successTerminationBehavior: .gracefullyShutdownGroup,
                  failureTerminationBehavior: .gracefullyShutdownGroup)
        }
        group = ServiceGroup(configuration: .init(services: [
            inOrder(AccessLogService(gateway: gateway)),
            inOrder(TraceExportService(gateway: gateway)),
            inOrder(FunctionSupervisorService(gateway: gateway)),
            inOrder(HealthCheckService(gateway: gateway)),
            inOrder(KeyRefreshService()),
            inOrder(AdminService(gateway: gateway)),
            inOrder(ListenerService(gateway: gateway)),
            inOrder(ReloadService(gateway: gateway)),
        ], logger: logger))
        let group = self.group
        let finished = self.finished
        Task {
            try? await group.run()
            await gateway.close()
            finished.signal()
        }
    }

    /// Waits until the listeners accept connections.
    func waitUntilReady(timeout: TimeInterval = 10) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while !gateway.isReady {
            guard Date() < deadline else { throw NotReady() }
            usleep(5_000)
        }
    }

    struct NotReady: Error {}

    /// Shuts the group down as SIGTERM would, and waits until the event loops have stopped.
    func stop() {
        let group = self.group
        Task { await group.triggerGracefulShutdown() }
        finished.wait()
    }
}
