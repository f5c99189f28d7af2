import NIOCore
import NIOExtras
import NIOPosix
import PorticoConfig

extension Gateway {
    /// Binds one `tcp:` listener. Its connections take their routing from the loop's snapshot
    /// when they arrive (by listener name), so a reload's changes reach new connections; a
    /// listener a reload removed refuses them until the next start closes its socket.
    func bindTCP(listener: TCPListenerConfig) async throws -> OpenListener {
        let proxyLoops = self.proxyLoops
        let name = listener.name
        let state = TCPListenerState(name: name, metrics: metrics)
        let quiesce = ServerQuiescingHelper(group: group)
        do {
            let channel = try await ServerBootstrap(group: group)
                .serverChannelOption(.backlog, value: 1024)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .serverChannelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(quiesce.makeServerChannelHandler(channel: channel))
                    }
                }
                .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
                // A client's FIN is passed on to the upstream, not taken as the end of both ways.
                .childChannelOption(.allowRemoteHalfClosure, value: true)
                .childChannelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        guard let loop = proxyLoops.context(on: channel.eventLoop) else {
                            throw ChannelError.ioOnClosedChannel
                        }
                        let sync = channel.pipeline.syncOperations
                        guard let routes = loop.snapshot.tcpRoutes[name] else {
                            try sync.addHandler(TCPRefuseHandler())
                            return
                        }
                        guard state.admit(limit: routes.config.maxConnections) else {
                            try sync.addHandler(TCPRefuseHandler())
                            return
                        }
                        // Counted out when the socket closes, whatever the session got to.
                        channel.closeFuture.whenComplete { _ in state.connectionClosed() }
                        try sync.addHandler(TCPRelayHandler(side: .client, session: TCPProxySession(
                            listener: state, routes: routes, loop: loop)))
                    }
                }
                .bind(host: listener.address.host, port: listener.address.port)
                .get()
            return OpenListener(channel: channel, quiesce: quiesce)
        } catch {
            throw ListenerBindError(what: "tcp listener '\(name)'", address: "\(listener.address)", underlying: error)
        }
    }
}
