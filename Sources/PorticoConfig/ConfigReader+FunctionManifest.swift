import Yams

extension ConfigReader {
    static let functionManifestKeys = [
        "command", "build", "buildTimeout", "mode", "routes", "env", "concurrency", "minWorkers", "maxWorkers", "idleTimeout",
        "startupTimeout", "requestTimeout", "queueLimit", "queueBodyLimit", "gracePeriod", "limits", "readiness",
        "outlierDetection", "protocol", "runtime", "handler", "template", "idleTemplate", "maxStreamDuration",
    ]
    /// Settings of long-running workers. An exec function starts one process per request and
    /// never keeps one around, so accepting these would promise behaviour that cannot happen.
    static let httpOnlyFunctionKeys = ["concurrency", "minWorkers", "idleTimeout", "readiness", "outlierDetection", "protocol",
                                       "maxStreamDuration"]
    /// Settings a Lambda worker cannot honour: it takes one invocation at a time, is ready when
    /// it first asks for an invocation, and speaks the Runtime API, not HTTP, to Portico.
    static let notForLambdaKeys = ["concurrency", "readiness", "outlierDetection", "protocol"]
    /// Set by Portico for every worker (Knative's runtime contract); a manifest value would
    /// either be overwritten or break the worker's address.
    static let reservedEnvironmentNames = ["PORT", "K_SERVICE", "K_REVISION", "K_CONFIGURATION"]
    /// `RLIMIT_AS` counts mapped, not used, memory: below this, common runtimes fail to start,
    /// which would look like a crashing function rather than a too-small limit.
    static let minimumFunctionMemory = 16 << 20

    /// Reports a function name that is not a DNS label. The name comes from the folder, not from
    /// any line of the file, so the diagnostic points at the top of the file.
    func checkFunctionName(_ name: String) {
        if let problem = FunctionManifest.nameProblem(name) {
            error("\(problem) (a function is named after its folder)", at: nil, key: "(name)")
        }
    }

    /// Reads a whole `function.yaml`; nil when anything was reported.
    func functionManifest(from root: Node?, name: String, directory: String) -> FunctionManifest? {
        checkFunctionName(name)
        guard let root, !isNull(root) else {
            error("the file is empty; expected at least a 'command' such as [\"python3\", \"main.py\"]", at: root, key: "command")
            return nil
        }
        guard let top = fields(root, key: "", allowed: Self.functionManifestKeys) else { return nil }
        var manifest = FunctionManifest(name: name, directory: directory, command: [])

        if let node = top["mode"], let mode = choice(node, key: "mode",
                                                     [("http", FunctionManifest.Mode.http), ("exec", .exec), ("lambda", .lambda)]) {
            manifest.mode = mode
        }
        if let node = top["runtime"], let runtime = choice(node, key: "runtime", [("python", FunctionManifest.Runtime.python)]) {
            manifest.runtime = runtime
        }
        if let node = top["command"] {
            if top.has("runtime") {
                error("a function has either a 'command' or a 'runtime' with a 'handler', not both: with a runtime, "
                        + "Portico runs the handler itself", at: top.keyNode("command"), key: "command")
            } else {
                manifest.command = commandLine(node, key: "command") ?? []
            }
        } else if top.has("runtime") {
            // Portico's launcher runs the handler.
        } else if manifest.mode == .lambda {
            // A custom runtime's entry point in Lambda is the folder's `bootstrap`.
            manifest.command = ["./bootstrap"]
        } else {
            requireKey("command", in: top,
                       message: "missing required key 'command', the program and its arguments, such as [\"python3\", \"main.py\"] "
                        + "(or a 'runtime: python' with a 'handler')")
        }
        if let node = top["build"] {
            manifest.build = commandLine(node, key: "build")
        }
        if let value = top["buildTimeout"].flatMap({ duration($0, key: "buildTimeout") }) {
            manifest.buildTimeout = value
        }
        if let node = top["protocol"],
           let value = choice(node, key: "protocol", [("http1", UpstreamProtocol.http1), ("h2c", .h2c)]) {
            // A worker listens on a loopback port in plaintext: no TLS, so no `h2` or `auto`.
            manifest.protocol = value
        }
        if manifest.mode == .exec {
            for key in Self.httpOnlyFunctionKeys where top.has(key) {
                error("only for mode: http; an exec function starts one process per request", at: top.keyNode(key), key: key)
            }
        }
        if manifest.mode == .lambda {
            for key in Self.notForLambdaKeys where top.has(key) {
                error("not for mode: lambda; a Lambda worker takes one invocation at a time through the Runtime API",
                      at: top.keyNode(key), key: key)
            }
            manifest.concurrency = 1
        }
        functionRuntime(top, into: &manifest)
        if let node = top["routes"], let routes = functionRoutes(node, key: "routes") {
            manifest.routes = routes
        }
        if let node = top["env"] {
            manifest.env = environment(node, key: "env")
        }

        let unbounded = Int(Int32.max)
        if let value = top["concurrency"].flatMap({
            int($0, key: "concurrency", in: 0...unbounded, rangeMessage: "must be 0 (unlimited) or more")
        }) {
            manifest.concurrency = value
        }
        let minWorkers = top["minWorkers"].flatMap { int($0, key: "minWorkers", in: 0...unbounded, rangeMessage: "must be 0 or more") }
        let maxWorkers = top["maxWorkers"].flatMap { int($0, key: "maxWorkers", in: 1...unbounded, rangeMessage: "must be at least 1") }
        manifest.minWorkers = minWorkers ?? manifest.minWorkers
        manifest.maxWorkers = maxWorkers ?? manifest.maxWorkers
        // An invalid maxWorkers was reported already; comparing against the default would add a
        // second, misleading message.
        let maxWorkersUsable = top["maxWorkers"] == nil || maxWorkers != nil
        if maxWorkersUsable && manifest.maxWorkers < manifest.minWorkers {
            // Reported on whichever of the two the file sets explicitly, since that is the one to edit.
            if let maxWorkers {
                error("must be at least minWorkers (\(manifest.minWorkers)), got \(maxWorkers)",
                      at: top["maxWorkers"], key: "maxWorkers")
            } else {
                error("must not be more than maxWorkers (default \(manifest.maxWorkers)), got \(manifest.minWorkers)",
                      at: top["minWorkers"], key: "minWorkers")
            }
        }
        if let value = top["queueLimit"].flatMap({ int($0, key: "queueLimit", in: 0...unbounded, rangeMessage: "must be 0 or more") }) {
            manifest.queueLimit = value
        }
        if let node = top["queueBodyLimit"], let value = size(node, key: "queueBodyLimit") {
            if value < FunctionManifest.minimumQueueBodyLimit {
                error("must be at least \(ConfigSize.format(FunctionManifest.minimumQueueBodyLimit))\(Self.got(node))",
                      at: node, key: "queueBodyLimit")
            } else {
                manifest.queueBodyLimit = value
            }
        }

        if let value = top["idleTimeout"].flatMap({ duration($0, key: "idleTimeout") }) {
            manifest.idleTimeout = value
        }
        if let value = top["startupTimeout"].flatMap({ duration($0, key: "startupTimeout") }) {
            manifest.startupTimeout = value
        }
        if let value = top["requestTimeout"].flatMap({ duration($0, key: "requestTimeout") }) {
            manifest.requestTimeout = value
        }
        if let value = top["gracePeriod"].flatMap({ duration($0, key: "gracePeriod") }) {
            manifest.gracePeriod = value
        }
        if let value = top["maxStreamDuration"].flatMap({ duration($0, key: "maxStreamDuration") }) {
            manifest.maxStreamDuration = value
        }
        if let node = top["limits"] {
            manifest.limits = functionLimits(node, key: "limits")
        }
        if let node = top["readiness"] {
            manifest.readinessPath = readinessPath(node, key: "readiness")
        }
        if let node = top["outlierDetection"] {
            manifest.outlierDetection = outlierDetection(node, key: "outlierDetection")
        }

        return hasErrors ? nil : manifest
    }

    /// `runtime:`, `handler:`, `template:` and `idleTemplate:`, checked together: each of the
    /// others means something only with a runtime, and an exec function has no workers to fork.
    private func functionRuntime(_ top: Fields, into manifest: inout FunctionManifest) {
        let hasRuntime = top.has("runtime")
        if let node = top["handler"] {
            if hasRuntime {
                if let handler = string(node, key: "handler", what: "a handler such as app:application") {
                    if Self.isPythonHandler(handler) {
                        manifest.handler = handler
                    } else {
                        error("expected MODULE:NAME such as app:application or api.wsgi:app, got '\(handler)'", at: node, key: "handler")
                    }
                }
            } else if manifest.mode == .lambda {
                if let handler = string(node, key: "handler", what: "a handler such as main.handler") {
                    if handler.isEmpty { error("expected a handler such as main.handler, got ''", at: node, key: "handler") }
                    manifest.handler = handler
                }
            } else {
                error("only with 'runtime: python' (the handler Portico runs) or mode: lambda (the runtime's _HANDLER)",
                      at: top.keyNode("handler"), key: "handler")
            }
        } else if hasRuntime {
            requireKey("handler", in: top, message: "missing required key 'handler', as MODULE:NAME, such as app:application "
                        + "(a WSGI application; with mode: lambda, a handler(event, context))")
        }
        if let node = top["template"], let value = bool(node, key: "template") {
            manifest.usesTemplate = value
        }
        if let node = top["idleTemplate"], let value = bool(node, key: "idleTemplate") {
            manifest.idleTemplate = value
        }
        if !hasRuntime {
            for key in ["template", "idleTemplate"] where top.has(key) {
                error("only with 'runtime: python'; a function with a 'command' runs its own program", at: top.keyNode(key), key: key)
            }
            return
        }
        if manifest.mode == .exec {
            error("only for mode: http; an exec function starts one process per request", at: top.keyNode("runtime"), key: "runtime")
        }
        if manifest.protocol != .http1 {
            error("the python runtime serves HTTP/1.1 only", at: top.keyNode("protocol"), key: "protocol")
        }
        if top.has("idleTemplate") && !manifest.usesTemplate {
            error("only with a template; 'template: false' starts every worker plainly", at: top.keyNode("idleTemplate"), key: "idleTemplate")
        }
    }

    /// `module.sub:attribute.sub`: dotted Python identifiers on both sides of one colon.
    static func isPythonHandler(_ text: String) -> Bool {
        let sides = text.split(separator: ":", omittingEmptySubsequences: false)
        guard sides.count == 2 else { return false }
        return sides.allSatisfy { side in
            side.split(separator: ".", omittingEmptySubsequences: false).allSatisfy { part in
                guard let first = part.unicodeScalars.first, !("0"..."9").contains(first) else { return false }
                return part.unicodeScalars.allSatisfy { scalar in
                    ("a"..."z").contains(scalar) || ("A"..."Z").contains(scalar) || ("0"..."9").contains(scalar) || scalar == "_"
                }
            }
        }
    }

    /// `command:` and `build:` — a list, never a string: commands run without a shell, so a
    /// string would have to be split into words by rules of our own that nobody expects.
    private func commandLine(_ node: Node, key: String) -> [String]? {
        if case .scalar = node, !isNull(node) {
            error("expected a list such as [\"python3\", \"main.py\"]\(Self.got(node)); use a list: commands run without a shell, "
                    + "so a string is not split into words", at: node, key: key)
            return nil
        }
        guard let items = sequence(node, key: key, of: "arguments such as [\"python3\", \"main.py\"]") else { return nil }
        guard !items.isEmpty else {
            error("expected the program and its arguments, got an empty list", at: node, key: key)
            return nil
        }
        let errorsBefore = diagnostics.count
        var arguments: [String] = []
        for (index, item) in items.enumerated() {
            let itemPath = Self.path(key, index: index)
            guard let argument = string(item, key: itemPath, what: "an argument") else { continue }
            if index == 0 && argument.isEmpty {
                error("expected a program name, got ''", at: item, key: itemPath)
            }
            arguments.append(argument)
        }
        return diagnostics.count == errorsBefore ? arguments : nil
    }

    /// `routes:` — each item is a gateway `match` written inline, plus an optional `rewrite`.
    /// An empty list is allowed: the function is then reached only through gateway.yaml routes
    /// that name it.
    private func functionRoutes(_ node: Node, key: String) -> [FunctionRoute]? {
        guard let items = sequence(node, key: key, of: "routes such as { prefix: /hello/, rewrite: / }") else { return nil }
        let errorsBefore = diagnostics.count
        var result: [FunctionRoute] = []
        for (index, item) in items.enumerated() {
            let itemPath = Self.path(key, index: index)
            guard let fields = fields(item, key: itemPath, allowed: Self.matchKeys + ["rewrite"]) else { continue }
            let match = routeMatch(fields)
            var rewrite: RewriteConfig?
            if let rewriteNode = fields["rewrite"] {
                if fields.has("prefix") {
                    rewrite = urlPath(rewriteNode, key: fields.path("rewrite")).map { RewriteConfig(prefix: $0) }
                } else {
                    error("rewrite replaces the matched prefix, so it needs a 'prefix' in the same route",
                          at: fields.keyNode("rewrite"), key: fields.path("rewrite"))
                }
            }
            if let match {
                result.append(FunctionRoute(match: match, rewrite: rewrite))
            }
        }
        return diagnostics.count == errorsBefore ? result : nil
    }

    /// `env:` — kept in file order so a worker sees them the way the file lists them.
    private func environment(_ node: Node, key: String) -> [EnvironmentVariable] {
        guard let entries = namedEntries(node, key: key, what: "environment variable") else { return [] }
        var result: [EnvironmentVariable] = []
        for entry in entries {
            let path = Self.path(key, entry.name)
            if entry.name == "AWS_LAMBDA_RUNTIME_API" {
                error("'AWS_LAMBDA_RUNTIME_API' is reserved: Portico sets it for lambda-mode workers, to the address of their Runtime API",
                      at: entry.key, key: path)
                continue
            }
            if Self.reservedEnvironmentNames.contains(entry.name) {
                error("'\(entry.name)' is reserved: Portico sets \(Self.list(Self.reservedEnvironmentNames)) for every worker",
                      at: entry.key, key: path)
                continue
            }
            guard Self.isEnvironmentName(entry.name) else {
                error("'\(entry.name)' is not a valid environment variable name; use letters, digits and '_', not starting with a digit",
                      at: entry.key, key: path)
                continue
            }
            // `string` takes any scalar as written, so `RETRIES: 3` and `DEBUG: true` are the text
            // the user typed, which is all an environment variable can hold anyway.
            guard let value = string(entry.value, key: path, what: "a value (write \"\" for an empty one)") else { continue }
            result.append(EnvironmentVariable(name: entry.name, value: value))
        }
        return result
    }

    /// `limits:` — applied with setrlimit in each worker.
    private func functionLimits(_ node: Node, key: String) -> FunctionLimits {
        var limits = FunctionLimits()
        guard let fields = fields(node, key: key, allowed: ["memory", "openFiles"]) else { return limits }
        if let memoryNode = fields["memory"], let memory = size(memoryNode, key: fields.path("memory")) {
            if memory < Self.minimumFunctionMemory {
                error("must be at least \(ConfigSize.format(Self.minimumFunctionMemory))\(Self.got(memoryNode))",
                      at: memoryNode, key: fields.path("memory"))
            } else {
                limits.memory = memory
            }
        }
        if let value = fields["openFiles"].flatMap({
            int($0, key: fields.path("openFiles"), in: 1...Int(Int32.max), rangeMessage: "must be at least 1")
        }) {
            limits.openFiles = value
        }
        return limits
    }

    /// `readiness: { path: /healthz }`.
    private func readinessPath(_ node: Node, key: String) -> String? {
        guard let fields = fields(node, key: key, allowed: ["path"]) else { return nil }
        guard let pathNode = fields["path"] else {
            requireKey("path", in: fields)
            return nil
        }
        return urlPath(pathNode, key: fields.path("path"))
    }

    /// POSIX's portable name: `[A-Za-z_][A-Za-z0-9_]*`.
    static func isEnvironmentName(_ s: String) -> Bool {
        guard let first = s.unicodeScalars.first, !("0"..."9").contains(first) else { return false }
        return s.unicodeScalars.allSatisfy { scalar in
            ("a"..."z").contains(scalar) || ("A"..."Z").contains(scalar) || ("0"..."9").contains(scalar) || scalar == "_"
        }
    }
}
