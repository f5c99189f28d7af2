import Foundation

/// Names a version of a function's folder by its content, so a redeploy that changes nothing
/// keeps the running workers, and any change starts a new revision.
public enum FunctionRevision {
    /// Where a function's `build` may put its outputs. It starts with `.`, so the rule that skips
    /// hidden entries already leaves it out; the name is here so builders and this hash agree.
    public static let buildOutputFolder = ".portico-build"

    /// A 12-character lower-case hex hash of every file under `directory`: relative path,
    /// content and executable bit, in sorted path order.
    ///
    /// Hidden entries (`.git`, editor swap files, `.portico-build`) are skipped at every level:
    /// they are not part of what was deployed, and build outputs change whenever a build runs.
    /// Symbolic links count by their target path and are not followed, so a link cannot pull
    /// an outside tree (or a loop) into the hash. Sockets and FIFOs are skipped: reading a FIFO
    /// would block.
    ///
    /// - Throws: `ConfigError` naming the folder or the file that could not be read.
    public static func hash(directory: String) throws -> String {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw problem(directory, key: "(directory)", "no such directory")
        }
        var entries: [Entry] = []
        try collect(directory: directory, relativePath: "", into: &entries)
        // Byte order, not `String` order, so the result cannot depend on Unicode collation rules.
        entries.sort { $0.relativePath.utf8.lexicographicallyPrecedes($1.relativePath.utf8) }

        var hasher = FNV1a64()
        for entry in entries {
            // Every field is terminated or fixed-width, so two different trees cannot feed the
            // same byte stream (a path can hold no NUL byte).
            hasher.add(entry.relativePath.utf8)
            hasher.add(byte: 0)
            switch entry.kind {
            case .file(let executable):
                hasher.add(byte: executable ? 1 : 2)
                let (contentHash, length) = try contentHash(of: directory + "/" + entry.relativePath)
                hasher.add(littleEndian: contentHash)
                hasher.add(littleEndian: length)
            case .symbolicLink(let target):
                hasher.add(byte: 3)
                hasher.add(target.utf8)
                hasher.add(byte: 0)
            }
        }
        let hex = String(hasher.value >> 16, radix: 16)
        return String(repeating: "0", count: 12 - hex.count) + hex
    }

    private struct Entry {
        enum Kind {
            case file(executable: Bool)
            case symbolicLink(target: String)
        }

        var relativePath: String
        var kind: Kind
    }

    private static func collect(directory: String, relativePath: String, into entries: inout [Entry]) throws {
        let path = relativePath.isEmpty ? directory : directory + "/" + relativePath
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: path)
        } catch {
            throw problem(path, key: "(directory)", "cannot list the folder (check its permissions)")
        }
        for name in names where !name.hasPrefix(".") {
            let childRelative = relativePath.isEmpty ? name : relativePath + "/" + name
            let childPath = directory + "/" + childRelative
            // `attributesOfItem` does not follow a symbolic link, so a link is seen as a link.
            let attributes: [FileAttributeKey: Any]
            do {
                attributes = try FileManager.default.attributesOfItem(atPath: childPath)
            } catch {
                throw problem(childPath, key: "(file)", "cannot read the file's attributes")
            }
            switch attributes[.type] as? FileAttributeType {
            case .typeDirectory?:
                try collect(directory: directory, relativePath: childRelative, into: &entries)
            case .typeRegular?:
                let permissions = (attributes[.posixPermissions] as? NSNumber)?.intValue ?? 0
                entries.append(Entry(relativePath: childRelative, kind: .file(executable: permissions & 0o111 != 0)))
            case .typeSymbolicLink?:
                let target = (try? FileManager.default.destinationOfSymbolicLink(atPath: childPath)) ?? ""
                entries.append(Entry(relativePath: childRelative, kind: .symbolicLink(target: target)))
            default:
                continue
            }
        }
    }

    /// Reads in chunks, so a large asset or binary in the folder never sits in memory whole.
    private static func contentHash(of path: String) throws -> (hash: UInt64, length: UInt64) {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw problem(path, key: "(file)", "cannot read the file (check its permissions)")
        }
        defer { try? handle.close() }
        var hasher = FNV1a64()
        var length: UInt64 = 0
        while true {
            let chunk: Data
            do {
                chunk = try handle.read(upToCount: 256 * 1024) ?? Data()
            } catch {
                throw problem(path, key: "(file)", "cannot read the file: \(error.localizedDescription)")
            }
            if chunk.isEmpty { break }
            chunk.withUnsafeBytes { hasher.add($0) }
            length += UInt64(chunk.count)
        }
        return (hasher.value, length)
    }

    private static func problem(_ path: String, key: String, _ message: String) -> ConfigError {
        ConfigError([ConfigDiagnostic(location: SourceLocation(file: path, line: 1, column: 1), key: key, message: message)])
    }
}
