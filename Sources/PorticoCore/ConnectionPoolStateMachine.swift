/// The decisions of one upstream connection pool: one endpoint, one event loop.
///
/// The machine never touches a socket or a clock. The shell (`UpstreamPool` in PorticoProxy)
/// feeds it events and performs the `Action` it returns, so every path through the pool can be
/// driven event by event in a unit test.
///
/// It is `@inlinable` so the proxy's pools get a copy specialised for their types: called
/// across the module boundary unspecialised, every lease and release looked up generic
/// metadata and witness tables at run time.
public struct ConnectionPoolStateMachine<Connection: Hashable, Waiter: Hashable> {
    public enum Action: Equatable {
        case none
        /// Hand `connection` to `waiter`.
        case lease(Connection, to: Waiter)
        /// Open a new connection; its outcome comes back as `connectionEstablished` or `connectionFailed`.
        case createConnection
        /// The pool cannot serve this waiter (connect failure while it waited, or shutdown).
        case failWaiter(Waiter, PoolFailure)
        case failWaiters([Waiter], PoolFailure)
        case closeConnection(Connection)
        /// Close these idle connections and fail these waiters (shutdown).
        case closeAll(connections: [Connection], waiters: [Waiter])
    }

    public enum PoolFailure: Equatable, Sendable {
        case connectFailed
        case tooManyWaiters
        case shuttingDown
    }

    /// Idle connections, most recently used last: reusing the warmest one keeps fewer alive.
    @usableFromInline var idle: [Connection] = []
    @usableFromInline var leased: Set<Connection> = []
    @usableFromInline var connecting = 0
    @usableFromInline var waiters: [Waiter] = []
    @usableFromInline var waitersHead = 0
    @usableFromInline var isShutDown = false

    public let maxConnections: Int
    public let maxWaiters: Int

    @inlinable
    public init(maxConnections: Int, maxWaiters: Int = 4096) {
        precondition(maxConnections > 0)
        self.maxConnections = maxConnections
        self.maxWaiters = maxWaiters
    }

    @inlinable
    public var idleCount: Int { idle.count }
    @inlinable
    public var leasedCount: Int { leased.count }
    @inlinable
    public var connectingCount: Int { connecting }
    @inlinable
    public var waiterCount: Int { waiters.count - waitersHead }
    @inlinable
    public var openCount: Int { idle.count + leased.count }

    /// A request wants a connection.
    @inlinable
    public mutating func leaseRequested(by waiter: Waiter) -> Action {
        guard !isShutDown else { return .failWaiter(waiter, .shuttingDown) }
        if let connection = idle.popLast() {
            leased.insert(connection)
            return .lease(connection, to: waiter)
        }
        guard waiterCount < maxWaiters else { return .failWaiter(waiter, .tooManyWaiters) }
        enqueue(waiter)
        // Open a connection only when the ones already being opened cannot serve every waiter.
        if connecting < waiterCount && openCount + connecting < maxConnections {
            connecting += 1
            return .createConnection
        }
        return .none
    }

    /// A waiter gave up (its request timed out or its client went away).
    @inlinable
    public mutating func waiterCancelled(_ waiter: Waiter) -> Action {
        if let index = waiters[waitersHead...].firstIndex(of: waiter) {
            waiters.remove(at: index)
        }
        return .none
    }

    @inlinable
    public mutating func connectionEstablished(_ connection: Connection) -> Action {
        connecting -= 1
        if isShutDown { return .closeConnection(connection) }
        if let waiter = dequeue() {
            leased.insert(connection)
            return .lease(connection, to: waiter)
        }
        idle.append(connection)
        return .none
    }

    /// A connect attempt failed. Its waiter fails fast rather than hoping a later attempt works:
    /// the endpoint just refused, and the client should hear so (502) now.
    @inlinable
    public mutating func connectionFailed() -> Action {
        connecting -= 1
        guard connecting < waiterCount, let waiter = dequeue() else { return .none }
        return .failWaiter(waiter, .connectFailed)
    }

    /// A leased connection came back. `reusable` is false when the exchange left it in an unknown
    /// state (the response ended early, the upstream said `Connection: close`, an error); the
    /// shell closes such a connection itself, and the machine only decides whether to replace it.
    @inlinable
    public mutating func connectionReleased(_ connection: Connection, reusable: Bool) -> Action {
        guard leased.remove(connection) != nil else { return .none }
        guard reusable else { return refillForWaiters() }
        guard !isShutDown else { return .closeConnection(connection) }
        if let waiter = dequeue() {
            leased.insert(connection)
            return .lease(connection, to: waiter)
        }
        idle.append(connection)
        return .none
    }

    /// The connection closed on its own (peer closed it, or it idled out).
    @inlinable
    public mutating func connectionClosed(_ connection: Connection) -> Action {
        if let index = idle.firstIndex(of: connection) {
            idle.remove(at: index)
            return .none
        }
        if leased.remove(connection) != nil {
            // The lessee learns of the close through its own channel; here it only frees a slot.
            return refillForWaiters()
        }
        return .none
    }

    @inlinable
    public mutating func shutdown() -> Action {
        isShutDown = true
        let connections = idle
        idle.removeAll()
        var failed: [Waiter] = []
        while let waiter = dequeue() { failed.append(waiter) }
        return .closeAll(connections: connections, waiters: failed)
    }

    @inlinable
    mutating func refillForWaiters() -> Action {
        if !isShutDown, connecting < waiterCount, openCount + connecting < maxConnections {
            connecting += 1
            return .createConnection
        }
        return .none
    }

    @inlinable
    mutating func enqueue(_ waiter: Waiter) {
        waiters.append(waiter)
    }

    @inlinable
    mutating func dequeue() -> Waiter? {
        guard waitersHead < waiters.count else { return nil }
        let waiter = waiters[waitersHead]
        waitersHead += 1
        // Compact now and then so the array does not grow without bound.
        if waitersHead > 64 && waitersHead * 2 > waiters.count {
            waiters.removeFirst(waitersHead)
            waitersHead = 0
        } else if waitersHead == waiters.count {
            waiters.removeAll(keepingCapacity: true)
            waitersHead = 0
        }
        return waiter
    }
}
