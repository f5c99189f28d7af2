import Foundation

/// A function folder that a running gateway could not deploy (a failed or timed-out `build`, a
/// revision that never became ready), as the gateway leaves it for `portico check`.
///
/// Kept in `<functions>/.portico-revisions/<name>.failed`: the folder's content hash, a newline,
/// the reason. It describes the folder only while the folder still has that content.
public struct FunctionDeployFailure: Sendable, Equatable {
    /// Where the gateway keeps revisions' private copies, inside the functions folder.
    public static let folderName = ".portico-revisions"

    /// `FunctionRevision.hash` of the folder that failed.
    public var contentHash: String
    public var reason: String

    public init(contentHash: String, reason: String) {
        self.contentHash = contentHash
        self.reason = reason
    }

    public static func path(functionsDirectory: String, name: String) -> String {
        (functionsDirectory.hasSuffix("/") ? functionsDirectory : functionsDirectory + "/") + folderName + "/" + name + ".failed"
    }

    /// The failure recorded for `name`, if any.
    public static func read(functionsDirectory: String, name: String) -> FunctionDeployFailure? {
        guard let text = try? String(contentsOfFile: path(functionsDirectory: functionsDirectory, name: name), encoding: .utf8),
              let newline = text.firstIndex(of: "\n") else { return nil }
        return FunctionDeployFailure(contentHash: String(text[..<newline]), reason: String(text[text.index(after: newline)...]))
    }

    /// The failure for `name` if the folder still has the content that failed.
    public static func current(functionsDirectory: String, manifest: FunctionManifest) -> FunctionDeployFailure? {
        guard let failure = read(functionsDirectory: functionsDirectory, name: manifest.name),
              let hash = try? FunctionRevision.hash(directory: manifest.directory), hash == failure.contentHash else { return nil }
        return failure
    }

    /// Best effort: a functions folder that cannot be written to has no record.
    public func write(functionsDirectory: String, name: String) {
        try? (contentHash + "\n" + reason).write(toFile: Self.path(functionsDirectory: functionsDirectory, name: name),
                                                  atomically: true, encoding: .utf8)
    }

    public static func remove(functionsDirectory: String, name: String) {
        try? FileManager.default.removeItem(atPath: path(functionsDirectory: functionsDirectory, name: name))
    }
}
