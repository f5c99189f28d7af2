import Foundation
import PorticoConfig

#if canImport(Glibc)
import Glibc
#endif

/// `portico deploy` waits for the revision it installed to be routable, the way `kn service
/// create` waits for a Knative revision to be Ready: built, and a first worker ready.
///
/// It learns that from the running gateway's admin API (`GET /functions`): the function's
/// `revision` names the folder's content hash, so the waiter knows when the gateway serves what
/// was installed and not an older revision. A build or start that failed for this content is
/// in the gateway's failure record (`FunctionDeployFailure`), which names the same hash.
struct DeployWaiter {
    let name: String
    /// `<name>-<hash>`, as `/functions` shows it.
    let revision: String
    let contentHash: String
    let functionsDirectory: String
    let admin: HostPort
    let timeout: TimeInterval

    enum Outcome {
        case ready(seconds: Double)
        case failed(String)
        case noGateway(String)
        case timedOut(String)
    }

    /// What the gateway shows of the function, and what that means for the wait.
    enum Phase: Equatable {
        case building
        case starting
        case ready
        case failed(String)
    }

    /// Polls until the revision is ready, failed, or `timeout` passes; prints each new phase.
    func wait(progress: (String) -> Void) -> Outcome {
        let started = Date()
        let deadline = started.addingTimeInterval(timeout)
        var shown: Phase?
        var lastProblem = "no answer yet"
        var answeredOnce = false
        while true {
            do {
                let response = try AdminClient.get(admin, path: "/functions", timeout: 5)
                answeredOnce = true
                guard response.status == 200 else { throw AdminClient.Failure.failed("/functions answered \(response.status)") }
                let phase = self.phase(in: response.body)
                switch phase {
                case .ready:
                    return .ready(seconds: Date().timeIntervalSince(started))
                case .failed(let reason):
                    return .failed(reason)
                case .building, .starting:
                    if phase != shown {
                        shown = phase
                        progress(phase == .building ? "building revision \(revision)…" : "starting a worker of revision \(revision)…")
                    }
                }
                lastProblem = phase == .building ? "the gateway does not serve revision \(revision) yet" : "no worker of it is ready yet"
            } catch AdminClient.Failure.refused(let message) where !answeredOnce {
                return .noGateway(message)
            } catch {
                // The gateway answered before: it may be restarting. Keep asking until the deadline.
                lastProblem = "\(error)"
            }
            if Date() >= deadline { return .timedOut(lastProblem) }
            usleep(100_000)
        }
    }

    /// Reads `/functions` (and the gateway's failure record) for this revision.
    func phase(in body: Data) -> Phase {
        let functions = ((try? JSONSerialization.jsonObject(with: body)) as? [String: Any])?["functions"] as? [[String: Any]]
        let entry = functions?.first { $0["name"] as? String == name }
        let serving = entry?["revision"] as? String == revision
        if serving, entry?["ready"] as? Bool == true { return .ready }
        if let failure = FunctionDeployFailure.read(functionsDirectory: functionsDirectory, name: name),
           failure.contentHash == contentHash {
            return .failed(failure.reason)
        }
        guard serving else { return .building }
        if let failure = entry?["startFailure"] as? String {
            return .failed("revision \(revision) did not become ready: \(failure)")
        }
        if entry?["warming"] as? Bool == true { return .starting }
        // It serves and nothing is starting it: a folder deployed again unchanged, whose
        // revision has waited cold since the gateway started. Routable; its first request
        // starts a worker.
        return .ready
    }
}
