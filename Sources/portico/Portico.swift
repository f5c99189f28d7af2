import ArgumentParser
import Foundation
import Logging
import PorticoConfig
import PorticoProxy
import PorticoRouting
import ServiceLifecycle
import UnixSignals

@main
struct Portico: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "A serverless gateway: HTTP/1.1, HTTP/2 and TLS in front of services and functions.",
        subcommands: [Serve.self, Check.self, Routes.self])
}

struct ConfigOption: ParsableArguments {
    @Option(name: .long, help: "The gateway config file.")
    var config = "config/gateway.yaml"
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the gateway.")

    @OptionGroup var options: ConfigOption

    @Option(name: .long, help: "The folder of function folders.")
    var functions = "Functions"

    @Option(name: .long, help: "Event loop threads (default: one per core).")
    var threads: Int?

    func run() async throws {
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = ProcessInfo.processInfo.environment["PORTICO_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .info
            return handler
        }
        let logger = Logger(label: "portico")
        let gateway: Gateway
        do {
            gateway = try Gateway(configPath: options.config, eventLoopThreads: threads ?? ProcessInfo.processInfo.activeProcessorCount,
                                  logger: logger)
        } catch let error as ConfigError {
            FileHandle.standardError.write(Data((error.description + "\n").utf8))
            throw ExitCode.failure
        }
        let group = ServiceGroup(configuration: .init(
            services: [
                .init(service: GatewayService(gateway: gateway), successTerminationBehavior: .gracefullyShutdownGroup),
                .init(service: ReloadOnSignalService(gateway: gateway)),
                .init(service: ConfigFileWatcher(gateway: gateway)),
            ],
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger))
        try await group.run()
    }
}

struct Check: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Validate the config; print each error as FILE:LINE:COLUMN: KEY: message.")

    @OptionGroup var options: ConfigOption

    func run() throws {
        let config: GatewayConfig
        do {
            config = try ConfigLoader.load(file: options.config)
        } catch let error as ConfigError {
            print(error.description)
            throw ExitCode.failure
        }
        let table: RouteTable
        do {
            table = try RouteTable(config: config)
        } catch {
            print("\(error)")
            throw ExitCode.failure
        }
        for shadowing in table.shadowedRoutes() {
            let shadowed = config.routes[shadowing.shadowed]
            let by = config.routes[shadowing.by]
            let warning = ConfigDiagnostic(
                severity: .warning, location: shadowed.location, key: "routes[\(shadowing.shadowed)]",
                message: "route '\(shadowed.name)' never matches: route '\(by.name)' (line \(by.location.line)) matches every request it would")
            print(warning.description)
        }
        print("\(options.config): ok (\(config.listeners.count) listeners, \(config.services.count) services, \(config.routes.count) routes)")
    }
}

struct Routes: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print the compiled route table in match order.")

    @OptionGroup var options: ConfigOption

    func run() throws {
        do {
            let config = try ConfigLoader.load(file: options.config)
            for line in try RouteTable(config: config).describe() { print(line) }
        } catch {
            print("\(error)")
            throw ExitCode.failure
        }
    }
}

/// Runs the gateway until the service group shuts down, then drains it. It binds inside the
/// group, so a SIGTERM that arrives while the sockets open is already handled as a drain.
struct GatewayService: Service {
    let gateway: Gateway

    func run() async throws {
        try gateway.start()
        try? await gracefulShutdown()
        await gateway.shutdown()
    }
}

/// SIGHUP reloads the config, as nginx and Envoy's hot restarters have taught people to expect.
struct ReloadOnSignalService: Service {
    let gateway: Gateway

    func run() async throws {
        for await _ in await UnixSignalsSequence(trapping: .sighup).cancelOnGracefulShutdown() {
            gateway.reload()
        }
    }
}

/// Reloads the config when its contents change on disk, checked once a second: cheap, and it
/// sees every way a file changes, including a Kubernetes ConfigMap swapping the symlink under
/// it (where the link's own date and size never change) and edits that keep the size.
struct ConfigFileWatcher: Service {
    let gateway: Gateway

    func run() async throws {
        var last = contents()
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            try? await Task.sleep(for: .seconds(1))
            let current = contents()
            if current != last {
                last = current
                gateway.reload()
            }
        }
    }

    /// The whole file, read through any symlinks; a config file is small.
    private func contents() -> Data? {
        let url = URL(fileURLWithPath: gateway.configPath).resolvingSymlinksInPath()
        return try? Data(contentsOf: url)
    }
}
