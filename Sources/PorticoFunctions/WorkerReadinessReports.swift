import CPorticoSpawn
import NIOCore
import NIOPosix

#if canImport(Glibc)
import Glibc
#endif

/// Readiness reports from the supervisors of the workers one event loop spawns.
///
/// A supervisor finds out when its worker's port accepts connections (see `supervise.c`) and
/// sends a `portico_ready_report` datagram; the gateway learns it from one wake-up instead of
/// probing every few hundred microseconds on the core the worker starts on. Each loop has one
/// datagram socket pair: the read end is a channel on the loop, and every supervisor spawned
/// there gets the write end.
///
/// `@unchecked Sendable`: an instance lives in its loop's thread-specific slot and is used only
/// on that loop's thread, which the compiler cannot see.
final class WorkerReadinessReports: @unchecked Sendable {
    private static let perThread = ThreadSpecificVariable<WorkerReadinessReports>()

    /// The write end, for supervisors.
    let socket: Int32
    private var waiting: [Int: (supervisor: Int32, onReady: (Int32) -> Void)] = [:]

    private init(socket: Int32) {
        self.socket = socket
    }

    /// The calling loop's reports, made on first use; nil if the socket pair cannot be made
    /// (the gateway's own probe then finds every worker).
    static func on(_ eventLoop: EventLoop) -> WorkerReadinessReports? {
        eventLoop.preconditionInEventLoop()
        if let existing = perThread.currentValue { return existing }
        var ends: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &ends) == 0 else { return nil }
        let reports = WorkerReadinessReports(socket: ends[1])
        let readEnd = ends[0]
        NIOPipeBootstrap(group: eventLoop)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ReportReader(reports: reports))
                }
            }
            .takingOwnershipOfDescriptor(input: readEnd)
            .whenFailure { _ in close(readEnd) }
        perThread.currentValue = reports
        return reports
    }

    /// Calls `onReady` (on the loop) when the supervisor `supervisor` reports `port` ready, with
    /// the supervisor's descriptor of the connection it found the port ready with.
    func expect(port: Int, supervisor: Int32, onReady: @escaping (Int32) -> Void) {
        waiting[port] = (supervisor, onReady)
    }

    func forget(port: Int) {
        waiting.removeValue(forKey: port)
    }

    fileprivate func received(port: Int, supervisor: Int32, connection: Int32) {
        // A report for a port no worker waits on, or from another supervisor (a stopped
        // worker's port given to a new one), is stale.
        guard let entry = waiting[port], entry.supervisor == supervisor else { return }
        waiting.removeValue(forKey: port)
        entry.onReady(connection)
    }

    private final class ReportReader: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        let reports: WorkerReadinessReports

        init(reports: WorkerReadinessReports) {
            self.reports = reports
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            var buffer = unwrapInboundIn(data)
            // One datagram per read; native byte order, from a process on this machine.
            while let port = buffer.readInteger(endianness: .host, as: Int32.self),
                  let supervisor = buffer.readInteger(endianness: .host, as: Int32.self),
                  let connection = buffer.readInteger(endianness: .host, as: Int32.self) {
                reports.received(port: Int(port), supervisor: supervisor, connection: connection)
            }
        }
    }
}
