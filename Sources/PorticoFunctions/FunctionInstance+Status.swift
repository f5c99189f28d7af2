import NIOCore
import PorticoProxy

/// What `/functions` shows of a function: read on its home loop, where its state lives.
extension FunctionInstance {
    /// A snapshot for the admin API.
    func status() -> EventLoopFuture<FunctionStatus> {
        homeLoop.submit {
            FunctionStatus(
                name: self.manifest.name, revision: self.revision, mode: self.manifest.mode.rawValue,
                state: self.scaler.isDraining ? "draining" : (self.scaler.liveWorkerCount > 0 ? "active" : "idle"),
                queueLength: self.scaler.queueLength, lastError: self.lastError,
                ready: self.hasBeenReady, warming: self.scaler.isWarming, startFailure: self.warmUpFailure,
                queueBodyBytes: self.waitingBodyBytes.load(ordering: .relaxed),
                workers: self.scaler.workers.map { worker in
                    let process = self.workers[worker.id]
                    return FunctionStatus.Worker(
                        id: worker.id.rawValue, pid: process?.pid.map { Int($0) }, port: process?.port,
                        state: "\(worker.state)", inFlight: worker.inFlight,
                        ageSeconds: process.map { Double(NIODeadline.now().uptimeNanoseconds - $0.started.uptimeNanoseconds) / 1e9 } ?? 0)
                },
                template: self.template.map { template in
                    FunctionStatus.Template(state: "\(template.phase)", pid: template.pid.map { Int($0) },
                                            failures: template.failures, lastFailure: template.lastFailure)
                })
        }
    }
}
