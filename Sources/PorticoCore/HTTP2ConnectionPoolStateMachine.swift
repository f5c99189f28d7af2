/// The decisions of one pool of HTTP/2 connections to one endpoint, owned by one event loop.
///
/// Unlike HTTP/1.1 (`ConnectionPoolStateMachine`), a connection carries many requests at once:
/// each lease is one stream, and a connection takes new streams while it has fewer open than
/// the peer's `SETTINGS_MAX_CONCURRENT_STREAMS` and has not received GOAWAY. A new connection
/// opens only when every connection is full (or draining) and the ones being opened cannot
/// be expected to take the waiters, up to `maxConnections`. A draining connection closes once
/// its last stream ends.
///
/// Pure, like the HTTP/1.1 machine: the shell (`HTTP2UpstreamPool`) feeds it events and
/// performs the `Action` it returns.
public struct HTTP2ConnectionPoolStateMachine<Connection: Hashable, Waiter: Hashable> {
    public enum Action: Equatable {
        case none
        /// Open a stream on `connection` for each of these waiters, in order.
        case lease(Connection, to: [Waiter])
        /// Open a new connection; its outcome comes back as `connectionEstablished` or `connectionFailed`.
        case createConnection
        case failWaiters([Waiter], PoolFailure)
        case closeConnection(Connection)
        /// Close these connections (no stream open on them) and fail these waiters (shutdown).
        case closeAll(connections: [Connection], waiters: [Waiter])
    }

    public typealias PoolFailure = ConnectionPoolStateMachine<Connection, Waiter>.PoolFailure

    @usableFromInline
    struct ConnectionState {
        @usableFromInline var openStreams: Int
        @usableFromInline var maxStreams: Int
        /// GOAWAY received, or retired by this side: no new stream goes on it.
        @usableFromInline var draining: Bool

        @inlinable
        init(maxStreams: Int) {
            self.openStreams = 0
            self.maxStreams = maxStreams
            self.draining = false
        }

        @inlinable
        var hasRoom: Bool { !draining && openStreams < maxStreams }
    }

    /// Live connections in the order they were established: new streams go to the oldest one
    /// with room, so that younger connections empty out and can idle out.
    @usableFromInline var order: [Connection] = []
    @usableFromInline var states: [Connection: ConnectionState] = [:]
    @usableFromInline var connecting = 0
    @usableFromInline var waiters: [Waiter] = []
    @usableFromInline var isShutDown = false

    public let maxConnections: Int
    public let maxWaiters: Int
    /// What a connection being opened is expected to take before its SETTINGS say (RFC 9113
    /// recommends that a peer allow at least 100).
    public let assumedStreamsPerConnection: Int

    @inlinable
    public init(maxConnections: Int, maxWaiters: Int = 4096, assumedStreamsPerConnection: Int = 100) {
        precondition(maxConnections > 0 && assumedStreamsPerConnection > 0)
        self.maxConnections = maxConnections
        self.maxWaiters = maxWaiters
        self.assumedStreamsPerConnection = assumedStreamsPerConnection
    }

    @inlinable
    public var connectionCount: Int { order.count }
    @inlinable
    public var connectingCount: Int { connecting }
    @inlinable
    public var waiterCount: Int { waiters.count }
    /// Connections with no stream open.
    @inlinable
    public var idleCount: Int { order.reduce(0) { $0 + (states[$1]!.openStreams == 0 ? 1 : 0) } }

    @inlinable
    public func openStreams(on connection: Connection) -> Int? { states[connection]?.openStreams }

    /// A request wants a stream.
    @inlinable
    public mutating func leaseRequested(by waiter: Waiter) -> Action {
        guard !isShutDown else { return .failWaiters([waiter], .shuttingDown) }
        if waiters.isEmpty, let connection = connectionWithRoom() {
            states[connection]!.openStreams += 1
            return .lease(connection, to: [waiter])
        }
        guard waiters.count < maxWaiters else { return .failWaiters([waiter], .tooManyWaiters) }
        waiters.append(waiter)
        return openIfNeeded()
    }

    /// A waiter gave up (its request timed out or its client went away).
    @inlinable
    public mutating func waiterCancelled(_ waiter: Waiter) -> Action {
        if let index = waiters.firstIndex(of: waiter) { waiters.remove(at: index) }
        return .none
    }

    /// A connection is ready: its preface and SETTINGS are exchanged, and the peer allows
    /// `maxStreams` concurrent streams.
    @inlinable
    public mutating func connectionEstablished(_ connection: Connection, maxStreams: Int) -> Action {
        connecting -= 1
        if isShutDown { return .closeConnection(connection) }
        order.append(connection)
        states[connection] = ConnectionState(maxStreams: maxStreams)
        return serveWaiters(on: connection)
    }

    /// A connect attempt failed. The waiters fail fast when no other attempt is under way:
    /// the endpoint just refused, and the clients should hear so now (as for HTTP/1.1).
    @inlinable
    public mutating func connectionFailed() -> Action {
        connecting -= 1
        guard connecting == 0, !waiters.isEmpty else { return .none }
        // Streams on a live connection may still come free for them.
        if order.contains(where: { !states[$0]!.draining }) { return .none }
        let failed = waiters
        waiters.removeAll()
        return .failWaiters(failed, .connectFailed)
    }

    /// The peer changed `SETTINGS_MAX_CONCURRENT_STREAMS`.
    @inlinable
    public mutating func maxStreamsChanged(_ connection: Connection, to maxStreams: Int) -> Action {
        guard states[connection] != nil else { return .none }
        states[connection]!.maxStreams = maxStreams
        return serveWaiters(on: connection)
    }

    /// A stream on `connection` is over (its exchange ended, or it was reset).
    @inlinable
    public mutating func streamClosed(on connection: Connection) -> Action {
        guard var state = states[connection], state.openStreams > 0 else { return .none }
        state.openStreams -= 1
        states[connection] = state
        if state.draining && state.openStreams == 0 {
            remove(connection)
            return .closeConnection(connection)
        }
        return serveWaiters(on: connection)
    }

    /// The connection takes no new stream: the peer sent GOAWAY, or this side retires it (it
    /// served its `maxRequestsPerConnection`). It closes once its open streams end, and
    /// waiters go to another connection, a new one if need be.
    @inlinable
    public mutating func connectionDraining(_ connection: Connection) -> Action {
        guard var state = states[connection], !state.draining else { return .none }
        state.draining = true
        states[connection] = state
        if state.openStreams == 0 {
            remove(connection)
            return .closeConnection(connection)
        }
        return openIfNeeded()
    }

    /// Asked after a connection was established or allowed more streams: waiters it could not
    /// take open another connection, when the limit allows.
    @inlinable
    public mutating func connectionsNeeded() -> Action {
        openIfNeeded()
    }

    /// The connection closed (the peer closed it, an error, or it idled out); its streams
    /// hear of it through the connection itself.
    @inlinable
    public mutating func connectionClosed(_ connection: Connection) -> Action {
        guard states[connection] != nil else { return .none }
        remove(connection)
        return openIfNeeded()
    }

    @inlinable
    public mutating func shutdown() -> Action {
        isShutDown = true
        var idle: [Connection] = []
        for connection in order {
            if states[connection]!.openStreams == 0 {
                idle.append(connection)
            } else {
                states[connection]!.draining = true
            }
        }
        for connection in idle { remove(connection) }
        let failed = waiters
        waiters.removeAll()
        return .closeAll(connections: idle, waiters: failed)
    }

    // MARK: Helpers

    @inlinable
    func connectionWithRoom() -> Connection? {
        for connection in order where states[connection]!.hasRoom { return connection }
        return nil
    }

    @inlinable
    mutating func serveWaiters(on connection: Connection) -> Action {
        guard var state = states[connection], state.hasRoom, !waiters.isEmpty else { return .none }
        let room = state.maxStreams - state.openStreams
        let served = Array(waiters.prefix(room))
        waiters.removeFirst(served.count)
        state.openStreams += served.count
        states[connection] = state
        return .lease(connection, to: served)
    }

    /// Opens a connection when the waiters outnumber what the connections being opened are
    /// expected to take, and the limit allows one more. Draining connections do not count
    /// against the limit: they take no new stream and close as their last one ends.
    @inlinable
    mutating func openIfNeeded() -> Action {
        guard !isShutDown, !waiters.isEmpty, connecting * assumedStreamsPerConnection < waiters.count else { return .none }
        var live = connecting
        for connection in order where !states[connection]!.draining { live += 1 }
        guard live < maxConnections else { return .none }
        connecting += 1
        return .createConnection
    }

    @inlinable
    mutating func remove(_ connection: Connection) {
        states[connection] = nil
        if let index = order.firstIndex(of: connection) { order.remove(at: index) }
    }
}
