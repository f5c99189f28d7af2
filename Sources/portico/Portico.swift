import ArgumentParser
import Foundation
import Logging
import PorticoAuth
import PorticoConfig
import PorticoFunctions
import PorticoProxy
import PorticoRouting
import ServiceLifecycle
import UnixSignals

@main
struct Portico: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "A serverless gateway: HTTP/1.1, HTTP/2 and TLS in front of services and functions.",
        subcommands: [Serve.self, Check.self, Routes.self, Explain.self, Deploy.self, Tap.self, Certs.self])
}

struct ConfigOption: ParsableArguments {
    @Option(name: .long, help: "The gateway config file.")
    var config = "config/gateway.yaml"
}

struct FunctionsOption: ParsableArguments {
    @Option(name: .long, help: "The folder of function folders.")
    var functions = "Functions"
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the gateway.")

    @OptionGroup var options: ConfigOption
    @OptionGroup var functionsOption: FunctionsOption

    @Option(name: .long, help: "Event loop threads (default: one per core).")
    var threads: Int?

    func run() async throws {
        LoggingSystem.bootstrap { label in
            var handler = LineLogHandler(label: label)
            handler.logLevel = ProcessInfo.processInfo.environment["PORTICO_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .info
            return handler
        }
        let logger = Logger(label: "portico")
        let gateway: Gateway
        do {
            // The functions folder's registry is the gateway's function source: its revisions
            // are backends (http mode) and local responders (exec mode) to the proxy.
            let functionsDirectory = functionsOption.functions
            gateway = try Gateway(configPath: options.config, eventLoopThreads: threads ?? ProcessInfo.processInfo.activeProcessorCount,
                                  logger: logger) { hooks in FunctionRegistry(directory: functionsDirectory, hooks: hooks) }
        } catch let error as ConfigError {
            FileHandle.standardError.write(Data((error.description + "\n").utf8))
            throw ExitCode.failure
        }
        // Every long-lived part is a service of this one group. The group starts them all at
        // once (the listeners wait for the key sets and the first function deploy themselves)
        // and, on SIGTERM or SIGINT, shuts them down one at a time, the last listed first.
        // That order is the drain:
        //  1. SIGHUP and the config watcher: nothing reloads a gateway on its way out, and they
        //     stop at once, so the listeners close within milliseconds of the signal.
        //  2. The reloader: reloads asked before this point still run; later ones are refused.
        //  3. The listeners: stop accepting on every listener at once, then let in-flight
        //     requests finish (up to limits.drainTimeout), then close the upstream pools.
        //  4. The admin API: it stays up through the drain, so /ready answers 503 meanwhile.
        //  5. Health checks and key-set refreshes: the drained requests were still picking
        //     endpoints by the one and checking tokens against the other.
        //  6. Functions: workers get SIGTERM only now, because requests to them were part of
        //     the drain.
        //  7. The access-log writer, last: it collects every event loop's batch and writes out
        //     everything queued, so the last requests are logged.
        // A service that fails (a listener that cannot bind) shuts the group down the same
        // way, and `run` then throws its error. The event loops stop after the group.
        func inOrder(_ service: any Service) -> ServiceGroupConfiguration.ServiceConfiguration {
            .init(service: service, successTerminationBehavior: .gracefullyShutdownGroup,
                  failureTerminationBehavior: .gracefullyShutdownGroup)
        }
        let group = ServiceGroup(configuration: .init(
            services: [
                inOrder(AccessLogService(gateway: gateway)),
                inOrder(TraceExportService(gateway: gateway)),
                inOrder(FunctionSupervisorService(gateway: gateway)),
                inOrder(HealthCheckService(gateway: gateway)),
                inOrder(KeyRefreshService()),
                inOrder(AdminService(gateway: gateway)),
                inOrder(ListenerService(gateway: gateway)),
                inOrder(ReloadService(gateway: gateway)),
                inOrder(ConfigFileWatcher(gateway: gateway)),
                inOrder(ReloadOnSignalService(gateway: gateway)),
            ],
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger))
        do {
            try await group.run()
        } catch {
            await gateway.close()
            throw error
        }
        await gateway.close()
    }
}

struct Check: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Validate the config; print each error as FILE:LINE:COLUMN: KEY: message.")

    @OptionGroup var options: ConfigOption
    @OptionGroup var functionsOption: FunctionsOption

    func run() throws {
        var failed = false
        let config: GatewayConfig
        do {
            config = try ConfigLoader.load(file: options.config)
        } catch let error as ConfigError {
            print(error.description)
            throw ExitCode.failure
        }
        let scan = FunctionDirectory.scan(functionsOption.functions)
        for name in scan.failures.keys.sorted() {
            print(scan.failures[name]!.description)
            failed = true
        }
        // What a running gateway could not deploy from these folders (a failed build, a
        // revision that never became ready), while the folder is unchanged since.
        for manifest in scan.manifests {
            guard let failure = FunctionDeployFailure.current(functionsDirectory: functionsOption.functions, manifest: manifest) else { continue }
            print(ConfigDiagnostic(location: SourceLocation(file: FunctionManifestLoader.manifestPath(in: manifest.directory), line: 1, column: 1),
                                   key: "(deploy)", message: failure.reason).description)
            failed = true
        }
        let deployed = Set(scan.manifests.map(\.name))
        for route in config.routes {
            let named: [String]
            switch route.action {
            case .function(let name): named = [name]
            case .split(let backends): named = backends.compactMap { if case .function(let name) = $0.backend { return name } else { return nil } }
            default: named = []
            }
            for name in named where !deployed.contains(name) {
                print(ConfigDiagnostic(severity: .warning, location: route.location, key: "routes[\(route.index)]",
                                       message: "function '\(name)' is not in \(functionsOption.functions)/: requests get 503 until it is deployed").description)
            }
        }
        let routes = config.routes + scan.manifests.routeConfigs(after: config.routes.count)
        let table: RouteTable
        do {
            table = try RouteTable(routes)
        } catch {
            print("\(error)")
            throw ExitCode.failure
        }
        for shadowing in table.shadowedRoutes() {
            let shadowed = routes[shadowing.shadowed]
            let by = routes[shadowing.by]
            let warning = ConfigDiagnostic(
                severity: .warning, location: shadowed.location, key: "routes[\(shadowing.shadowed)]",
                message: "route '\(shadowed.name)' never matches: route '\(by.name)' (line \(by.location.line)) matches every request it would")
            print(warning.description)
        }
        if failed { throw ExitCode.failure }
        print("\(options.config): ok (\(config.listeners.count) listeners, \(config.tcp.isEmpty ? "" : "\(config.tcp.count) tcp listeners, ")\(config.services.count) services, \(config.routes.count) routes, \(scan.manifests.count) functions)")
    }
}

struct Routes: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print the compiled route table in match order.")

    @OptionGroup var options: ConfigOption
    @OptionGroup var functionsOption: FunctionsOption

    func run() throws {
        do {
            let config = try ConfigLoader.load(file: options.config)
            let manifests = FunctionDirectory.scan(functionsOption.functions).manifests
            let routes = config.routes + manifests.routeConfigs(after: config.routes.count)
            for line in try RouteTable(routes).describe() { print(line) }
        } catch {
            print("\(error)")
            throw ExitCode.failure
        }
    }
}

struct Deploy: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Install a function folder into the functions folder, atomically, and wait until the gateway serves it.",
        discussion: """
            The running gateway (found through the admin address in --config) builds the new revision and \
            starts a first worker; deploy returns once that worker is ready, or exits 1 with the build's or \
            the start's error. With no gateway running it installs and returns (exit 0): the gateway deploys \
            the folder when it starts.
            """)

    @Argument(help: "The function's folder (with its function.yaml).")
    var directory: String

    @Option(name: .long, help: "The function's name (default: the folder's name).")
    var name: String?

    @OptionGroup var functionsOption: FunctionsOption

    @OptionGroup var options: ConfigOption

    @Flag(name: .customLong("no-wait"), help: "Return once the folder is installed, without waiting for the gateway.")
    var noWait = false

    @Option(name: .long, help: "How long to wait for the revision to be ready, such as 90s or 5m.")
    var timeout = "5m"

    func validate() throws {
        guard let duration = ConfigDuration.parse(timeout), duration.nanoseconds > 0 else {
            throw ValidationError("--timeout takes a duration such as 90s or 5m, got '\(timeout)'")
        }
    }

    func run() throws {
        let source = URL(fileURLWithPath: directory).standardizedFileURL.path
        let functionName = name ?? URL(fileURLWithPath: source).lastPathComponent
        guard FunctionManifest.isValidName(functionName) else {
            print("\(functionName): not a valid function name (lower-case letters, digits and '-', at most 63)")
            throw ExitCode.failure
        }
        let installed: String
        do {
            installed = try FunctionInstaller.install(source: source, name: functionName,
                                                      functionsDirectory: functionsOption.functions)
        } catch {
            print("\(error)")
            throw ExitCode.failure
        }
        guard !noWait else {
            print("deployed \(functionName) to \(installed)")
            return
        }
        // The gateway names a revision after the content of the folder it copied: the same hash.
        let contentHash: String
        do {
            contentHash = try FunctionRevision.hash(directory: installed)
        } catch {
            print("installed \(functionName) to \(installed), but cannot read it back: \(error)")
            throw ExitCode.failure
        }
        let revision = functionName + "-" + contentHash
        print("installed \(functionName) to \(installed) (revision \(revision))")
        let admin: HostPort
        do {
            guard let address = try ConfigLoader.load(file: options.config).admin?.address else {
                print("not waiting: \(options.config) has no admin address to ask the gateway; it deploys the folder on its own")
                return
            }
            admin = address
        } catch {
            print("not waiting: cannot read \(options.config) to find the gateway (\(error)); a gateway watching "
                  + "\(functionsOption.functions) deploys the folder on its own")
            return
        }
        let waiter = DeployWaiter(name: functionName, revision: revision, contentHash: contentHash,
                                  functionsDirectory: functionsOption.functions, admin: admin,
                                  timeout: Double(ConfigDuration.parse(timeout)!.nanoseconds) / 1e9)
        switch waiter.wait(progress: { line in
            print(line)
            // As it happens, also when the output goes to a pipe (a CI log), not a terminal.
            fflush(nil)
        }) {
        case .ready(let seconds):
            print("ready: revision \(revision) in \(String(format: "%.1f", seconds)) s")
        case .failed(let reason):
            print("failed: \(reason)")
            throw ExitCode.failure
        case .noGateway(let reason):
            print("no gateway is running at \(admin) (\(reason)): the folder is installed, and the gateway deploys it when it starts")
        case .timedOut(let lastProblem):
            print("timed out after \(timeout): \(lastProblem) (does the gateway at \(admin) watch \(functionsOption.functions)?)")
            throw ExitCode.failure
        }
    }
}

/// SIGHUP reloads the config, as nginx and Envoy's hot restarters have taught people to expect.
struct ReloadOnSignalService: Service {
    let gateway: Gateway

    func run() async throws {
        for await _ in await UnixSignalsSequence(trapping: .sighup).cancelOnGracefulShutdown() {
            await gateway.reload()
        }
        // Stopping before its own graceful shutdown (the sequence ended for another reason)
        // would take the whole group down: wait for it.
        try? await gracefulShutdown()
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
            // The wait ends with a graceful shutdown, so it never holds up the group's.
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: .seconds(1)) }
            if Task.isCancelled || Task.isShuttingDownGracefully { return }
            let current = contents()
            if current != last {
                last = current
                await gateway.reload()
            }
            await gateway.reloadCertificatesIfChanged()
        }
    }

    /// The whole file, read through any symlinks; a config file is small.
    private func contents() -> Data? {
        let url = URL(fileURLWithPath: gateway.configPath).resolvingSymlinksInPath()
        return try? Data(contentsOf: url)
    }
}

/// `portico certs`: a development CA and workload certificates, so trying mTLS takes a minute.
struct Certs: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Make a development CA and certificates signed by it (for trying TLS and mTLS).",
        subcommands: [CertsInit.self, CertsIssue.self])
}

struct CertsDirectory: ParsableArguments {
    @Option(name: .long, help: "Where the CA and certificates are kept.")
    var dir = "config/certs"

    var caCertificate: String { dir + "/ca.pem" }
    var caKey: String { dir + "/ca-key.pem" }
}

struct CertsInit: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init", abstract: "Make a development CA: DIR/ca.pem and DIR/ca-key.pem.")

    @OptionGroup var directory: CertsDirectory

    @Flag(help: "Replace an existing CA (every certificate it signed stops being trusted).")
    var force = false

    func run() throws {
        if FileManager.default.fileExists(atPath: directory.caCertificate) && !force {
            print("\(directory.caCertificate) already exists; keeping it (use --force to replace it)")
            return
        }
        try FileManager.default.createDirectory(atPath: directory.dir, withIntermediateDirectories: true)
        let authority = try CertificateAuthority()
        try? FileManager.default.removeItem(atPath: directory.caKey)
        try DevelopmentCertificates.writePrivate(authority.keyPEM, to: directory.caKey)
        try authority.certificatePEM.write(toFile: directory.caCertificate, atomically: true, encoding: .utf8)
        print("wrote \(directory.caCertificate) and \(directory.caKey)")
    }
}

struct CertsIssue: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "issue",
        abstract: "Issue DIR/NAME.pem (certificate and CA chain) and DIR/NAME-key.pem, signed by the development CA.",
        discussion: "The certificate works as a server certificate and as a client certificate (mTLS).")

    @Argument(help: "The certificate's name: its common name and file name.")
    var name: String

    @OptionGroup var directory: CertsDirectory

    @Option(name: .long, help: "A SPIFFE ID (URI SAN), such as spiffe://example.org/ns/default/sa/orders.")
    var spiffe: [String] = []

    @Option(name: .long, help: "A DNS name (DNS SAN), such as localhost.")
    var dns: [String] = []

    @Option(name: .long, help: "An IP address (IP SAN), such as 127.0.0.1.")
    var ip: [String] = []

    @Option(name: .long, help: "Days the certificate is valid.")
    var days = 365

    func validate() throws {
        guard !name.isEmpty, name.allSatisfy({ $0.isLetter || $0.isNumber || "-_.".contains($0) }) else {
            throw ValidationError("NAME is a file name: letters, digits, '-', '_' and '.'")
        }
        for uri in spiffe where !uri.hasPrefix("spiffe://") {
            throw ValidationError("--spiffe takes a spiffe:// URI, got '\(uri)'")
        }
        guard days > 0 else { throw ValidationError("--days must be at least 1") }
    }

    func run() throws {
        let authority: CertificateAuthority
        do {
            authority = try CertificateAuthority(
                certificatePEM: String(contentsOfFile: directory.caCertificate, encoding: .utf8),
                keyPEM: String(contentsOfFile: directory.caKey, encoding: .utf8))
        } catch {
            print("cannot read the CA in \(directory.dir) (run 'portico certs init' first): \(error)")
            throw ExitCode.failure
        }
        let issued = try authority.issue(commonName: name, uris: spiffe, dnsNames: dns, ipAddresses: ip, days: days)
        let certificatePath = directory.dir + "/" + name + ".pem"
        let keyPath = directory.dir + "/" + name + "-key.pem"
        try? FileManager.default.removeItem(atPath: keyPath)
        try DevelopmentCertificates.writePrivate(issued.keyPEM, to: keyPath)
        try issued.chainPEM.write(toFile: certificatePath, atomically: true, encoding: .utf8)
        print("wrote \(certificatePath) and \(keyPath)")
    }
}
