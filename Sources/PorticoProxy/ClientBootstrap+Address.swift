import NIOCore
import NIOPosix
import PorticoConfig

extension ClientBootstrap {
    /// Connects to `host:port`, resolving `host` only when it is a name.
    ///
    /// NIO's `connect(host:port:)` always resolves, with getaddrinfo on a thread of its own: a
    /// thread hop for every new connection, even to 127.0.0.1, and on a gateway pinned to one
    /// core that thread takes its time from the event loop. It cost a function's cold start
    /// milliseconds (the readiness probes and the first connection each resolved). An IP
    /// address needs no resolving.
    public func connect(resolvingOnlyNames host: String, port: Int) -> EventLoopFuture<Channel> {
        if let address = try? SocketAddress(ipAddress: host, port: port) {
            return connect(to: address)
        }
        return connect(host: host, port: port)
    }

    /// Connects to `endpoint`, or makes the channel from `connectedSocket` when given (a socket
    /// connected to it already).
    func connect(to endpoint: HostPort, using connectedSocket: Int32?) -> EventLoopFuture<Channel> {
        if let connectedSocket { return withConnectedSocket(connectedSocket) }
        return connect(resolvingOnlyNames: endpoint.host, port: endpoint.port)
    }
}
