import Foundation

/// What `/proc` says about processes: how the tests see workers exist, or not.
enum Processes {
    struct Info {
        var pid: Int32
        var parent: Int32
        var state: Character
        var commandLine: String
    }

    static func all() -> [Info] {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return [] }
        return entries.compactMap { entry -> Info? in
            guard let pid = Int32(entry),
                  let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
            var parent: Int32 = 0
            var state: Character = "?"
            for line in status.split(separator: "\n") {
                if line.hasPrefix("PPid:") { parent = Int32(line.dropFirst(5).trimmingCharacters(in: .whitespaces)) ?? 0 }
                if line.hasPrefix("State:") { state = line.dropFirst(6).trimmingCharacters(in: .whitespaces).first ?? "?" }
            }
            let raw = (try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(pid)/cmdline"))) ?? Data()
            let commandLine = String(decoding: raw.map { $0 == 0 ? UInt8(ascii: " ") : $0 }, as: UTF8.self)
            return Info(pid: pid, parent: parent, state: state, commandLine: commandLine)
        }
    }

    /// Live (not zombie) processes whose command line contains `marker`, their supervisors
    /// (`portico-supervise ... COMMAND`) included.
    static func matching(_ marker: String) -> [Info] {
        all().filter { $0.commandLine.contains(marker) && $0.state != "Z" }
    }

    /// Like `matching`, without the supervisors: the workers and what they started.
    static func workers(_ marker: String) -> [Info] {
        matching(marker).filter { !$0.commandLine.hasPrefix("portico-supervise ") }
    }

    /// Children of `pid` that exited and were never reaped.
    static func zombies(childrenOf pid: Int32) -> [Info] {
        all().filter { $0.parent == pid && $0.state == "Z" }
    }
}
