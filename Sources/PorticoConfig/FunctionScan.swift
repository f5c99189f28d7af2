/// What `FunctionDirectory.scan` found: every function that loaded, and why each other one did not.
public struct FunctionScan: Sendable {
    /// Valid manifests, sorted by function name.
    public var manifests: [FunctionManifest]
    /// Folders whose `function.yaml` could not be loaded, by folder (function) name. A name may
    /// be here because it is itself invalid, so it is not guaranteed to be a valid function name.
    public var failures: [String: ConfigError]

    public init(manifests: [FunctionManifest] = [], failures: [String: ConfigError] = [:]) {
        self.manifests = manifests
        self.failures = failures
    }

    public func manifest(named name: String) -> FunctionManifest? {
        manifests.first { $0.name == name }
    }
}
