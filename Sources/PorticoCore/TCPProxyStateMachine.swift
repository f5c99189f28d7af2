/// One proxied TCP connection's life: the ClientHello wait (SNI routing only), the connect
/// attempts, the relay with half-closes passed through, and how it ended.
///
/// The client's FIN becomes a FIN to the upstream and the upstream's a FIN to the client; the
/// pair closes once both directions have ended, or at once when either side goes away or
/// errs. Events in, `Action`s out: the shell (`TCPProxySession`) does the I/O.
public struct TCPProxyStateMachine: Sendable {
    public enum Side: Sendable, Equatable {
        case client, upstream

        public var other: Side { self == .client ? .upstream : .client }
    }

    /// How a connection ended, as the access log writes it.
    public enum End: String, Sendable, Equatable {
        /// Both sides sent FIN.
        case completed
        case clientClosed = "client_closed"
        case upstreamClosed = "upstream_closed"
        case idleTimeout = "idle_timeout"
        case helloTimeout = "hello_timeout"
        /// Not TLS, or a ClientHello that does not parse or is too large.
        case badHello = "bad_hello"
        /// No route for the server name and no default.
        case noRoute = "no_route"
        case connectFailed = "connect_failed"
        /// The service's `circuitBreaker.maxConnections` was reached on every endpoint.
        case overflow
        /// Still open when the gateway's drain time ran out.
        case shutdown
    }

    public enum Action: Sendable, Equatable {
        case none
        /// Connect to an endpoint of the chosen service; `attempt` counts from 1.
        case connect(attempt: Int)
        /// The upstream is connected: send it the bytes buffered so far and start reading both
        /// sides; then, if `shutdownUpstreamOutput`, pass on the FIN the client already sent.
        case startRelay(shutdownUpstreamOutput: Bool)
        /// Send FIN to `side` once what was written to it has gone out.
        case shutdownOutput(Side)
        /// Flush both sides and close them.
        case close(End)
    }

    private enum State: Sendable, Equatable {
        case readingHello
        case connecting(attempt: Int, clientInputClosed: Bool)
        /// `clientToUpstreamOpen`: the client has not sent FIN yet; and the other way.
        case relaying(clientToUpstreamOpen: Bool, upstreamToClientOpen: Bool)
        case closed(End)
    }

    private var state: State
    private let maxConnectAttempts: Int

    /// `readsHelloFirst`: SNI routing, which waits for the ClientHello before it connects.
    public init(readsHelloFirst: Bool, maxConnectAttempts: Int) {
        self.state = readsHelloFirst ? .readingHello : .connecting(attempt: 0, clientInputClosed: false)
        self.maxConnectAttempts = max(1, maxConnectAttempts)
    }

    /// What the connection ended with, once it has.
    public var end: End? {
        if case .closed(let end) = state { return end }
        return nil
    }

    public var isReadingHello: Bool { state == .readingHello }

    public var isRelaying: Bool {
        if case .relaying = state { return true }
        return false
    }

    /// The client connected: a plain listener connects at once.
    public mutating func accepted() -> Action {
        guard case .connecting(0, let closed) = state else { return .none }
        state = .connecting(attempt: 1, clientInputClosed: closed)
        return .connect(attempt: 1)
    }

    /// The ClientHello arrived and named `service` (nil: no route and no default).
    public mutating func helloRouted(toService found: Bool) -> Action {
        guard state == .readingHello else { return .none }
        guard found else { return close(.noRoute) }
        state = .connecting(attempt: 1, clientInputClosed: false)
        return .connect(attempt: 1)
    }

    public mutating func helloFailed() -> Action {
        guard state == .readingHello else { return .none }
        return close(.badHello)
    }

    /// An attempt failed (refused, unreachable, timed out); `endpointsLeft` says whether an
    /// endpoint not yet tried remains.
    public mutating func connectFailed(endpointsLeft: Bool) -> Action {
        guard case .connecting(let attempt, let closed) = state else { return .none }
        guard attempt < maxConnectAttempts, endpointsLeft else { return close(.connectFailed) }
        state = .connecting(attempt: attempt + 1, clientInputClosed: closed)
        return .connect(attempt: attempt + 1)
    }

    /// Every endpoint of the service is at its connection limit.
    public mutating func noEndpointFree() -> Action {
        guard case .connecting = state else { return .none }
        return close(.overflow)
    }

    public mutating func connected() -> Action {
        guard case .connecting(_, let clientInputClosed) = state else { return .none }
        state = .relaying(clientToUpstreamOpen: !clientInputClosed, upstreamToClientOpen: true)
        return .startRelay(shutdownUpstreamOutput: clientInputClosed)
    }

    /// `side` sent FIN.
    public mutating func inputClosed(_ side: Side) -> Action {
        switch state {
        case .readingHello:
            // A client that ends before its ClientHello did: there is nothing to route.
            return side == .client ? close(.badHello) : .none
        case .connecting(let attempt, _):
            if side == .client { state = .connecting(attempt: attempt, clientInputClosed: true) }
            return .none
        case .relaying(var clientOpen, var upstreamOpen):
            switch side {
            case .client:
                guard clientOpen else { return .none }
                clientOpen = false
            case .upstream:
                guard upstreamOpen else { return .none }
                upstreamOpen = false
            }
            state = .relaying(clientToUpstreamOpen: clientOpen, upstreamToClientOpen: upstreamOpen)
            if !clientOpen && !upstreamOpen { return close(.completed) }
            return .shutdownOutput(side.other)
        case .closed:
            return .none
        }
    }

    /// `side`'s channel closed (reset, error, or closed by us).
    public mutating func closed(_ side: Side) -> Action {
        switch state {
        case .closed:
            return .none
        case .relaying(let clientOpen, let upstreamOpen):
            // NIO closes a socket whose output was shut when its input ends too, with no
            // inputClosed first: a side that closes after the other one's FIN ended its own
            // direction, and the pair is done.
            let otherDirectionDone = side == .upstream ? !clientOpen : !upstreamOpen
            return close(otherDirectionDone ? .completed : (side == .client ? .clientClosed : .upstreamClosed))
        default:
            return close(side == .client ? .clientClosed : .upstreamClosed)
        }
    }

    public mutating func idleTimedOut() -> Action {
        guard !isClosed else { return .none }
        return close(.idleTimeout)
    }

    public mutating func shutDown() -> Action {
        guard !isClosed else { return .none }
        return close(.shutdown)
    }

    public mutating func helloTimedOut() -> Action {
        guard state == .readingHello else { return .none }
        return close(.helloTimeout)
    }

    private var isClosed: Bool { end != nil }

    private mutating func close(_ end: End) -> Action {
        state = .closed(end)
        return .close(end)
    }
}
