/// One Lambda worker's side of the Runtime API: which invocation it has, whether its runtime
/// is waiting for one, and what each call of the API leads to.
///
/// A worker takes one invocation at a time (Lambda's concurrency). Its runtime asks for the
/// next one with a long poll (`GET .../invocation/next`) that is answered only once an
/// invocation is there, and answers each with a `response` or an `error` call. Before its
/// first poll it is initializing; it may report an init error instead.
///
/// The machine holds ids only; `Body` is whatever carries a payload (the shell's byte buffer,
/// a string in tests). The shell owns the sockets, the timers and the process.
public struct LambdaRuntimeStateMachine<Body> {
    public typealias ConnectionID = UInt64
    public typealias InvocationID = String

    public enum State: Equatable {
        /// Started, no poll yet: the runtime is loading the handler.
        case initializing
        /// Ready, with nothing to do and no poll waiting.
        case idle
        /// The runtime's poll waits on this connection.
        case polling(ConnectionID)
        /// An invocation waits for the runtime's next poll.
        case queued(InvocationID)
        /// The runtime has the invocation and owes its answer.
        case running(InvocationID)
        /// Init failed, an invocation timed out, or the process is gone: nothing more runs here.
        case finished
    }

    /// How an invocation ended.
    public enum Outcome {
        /// The runtime's `response` call: the handler's result.
        case response(Body)
        /// The runtime's `error` call: the handler raised.
        case error(Body)
        /// It ran past its deadline; the worker is stopped (as Lambda does).
        case timedOut
        /// The worker's process exited, or its runtime polled again without answering.
        case lost
        /// The worker had one already, or can take none any more (never sent by a correct shell
        /// on a ready worker: the scaler gives a worker one invocation at a time).
        case refused
    }

    /// Why an API call is refused; the shell answers with the status Lambda uses.
    public enum Refusal: Equatable {
        /// A `response` or `error` for an invocation the worker does not have: 400.
        case unknownInvocation
        /// A call that does not fit the worker's state (an init error once ready, a second
        /// poll while one waits, anything after the end): 403.
        case invalidState
    }

    public enum Action {
        /// The runtime's first poll: the worker is ready for invocations.
        case workerReady
        /// Answer the poll on this connection with the invocation.
        case deliver(InvocationID, to: ConnectionID)
        /// Answer an API call with 202 Accepted.
        case accept(ConnectionID)
        case refuse(ConnectionID, Refusal)
        case startDeadline(InvocationID)
        case cancelDeadline(InvocationID)
        /// The invocation's result goes back to the request that made it.
        case finish(InvocationID, Outcome)
        /// The runtime reported that it cannot start: the worker fails its start.
        case initFailed(Body)
        /// The worker cannot go on (its invocation timed out): kill it so it is replaced.
        case killWorker
    }

    public private(set) var state: State = .initializing

    public init() {}

    /// The runtime polls for its next invocation.
    public mutating func nextRequested(on connection: ConnectionID) -> [Action] {
        switch state {
        case .initializing:
            state = .polling(connection)
            return [.workerReady]
        case .idle:
            state = .polling(connection)
            return []
        case .queued(let invocation):
            state = .running(invocation)
            return [.deliver(invocation, to: connection)]
        case .running(let invocation):
            // The runtime moved on without an answer: the request it had gets none.
            state = .polling(connection)
            return [.cancelDeadline(invocation), .finish(invocation, .lost)]
        case .polling, .finished:
            return [.refuse(connection, .invalidState)]
        }
    }

    /// A request was dispatched to this worker.
    public mutating func invocationArrived(_ invocation: InvocationID) -> [Action] {
        switch state {
        case .polling(let connection):
            state = .running(invocation)
            return [.startDeadline(invocation), .deliver(invocation, to: connection)]
        case .initializing, .idle:
            state = .queued(invocation)
            return [.startDeadline(invocation)]
        case .queued, .running, .finished:
            return [.finish(invocation, .refused)]
        }
    }

    /// The runtime's `response` call.
    public mutating func responsePosted(_ invocation: InvocationID, body: Body, on connection: ConnectionID) -> [Action] {
        answer(invocation, with: .response(body), on: connection)
    }

    /// The runtime's `error` call.
    public mutating func errorPosted(_ invocation: InvocationID, body: Body, on connection: ConnectionID) -> [Action] {
        answer(invocation, with: .error(body), on: connection)
    }

    private mutating func answer(_ invocation: InvocationID, with outcome: Outcome, on connection: ConnectionID) -> [Action] {
        guard case .running(let current) = state, current == invocation else {
            return [.refuse(connection, state == .finished ? .invalidState : .unknownInvocation)]
        }
        state = .idle
        return [.accept(connection), .cancelDeadline(invocation), .finish(invocation, outcome)]
    }

    /// The runtime's `init/error` call.
    public mutating func initErrorPosted(body: Body, on connection: ConnectionID) -> [Action] {
        guard state == .initializing else { return [.refuse(connection, .invalidState)] }
        state = .finished
        return [.accept(connection), .initFailed(body)]
    }

    /// The invocation's deadline passed.
    public mutating func deadlinePassed(_ invocation: InvocationID) -> [Action] {
        switch state {
        case .running(let current) where current == invocation, .queued(let current) where current == invocation:
            state = .finished
            // The worker is taken out before the request hears: once that request is done, the
            // scaler must not hand this worker another one.
            return [.killWorker, .finish(invocation, .timedOut)]
        default:
            return []
        }
    }

    /// A connection closed (a poll given up on, say).
    public mutating func connectionClosed(_ connection: ConnectionID) -> [Action] {
        if case .polling(let current) = state, current == connection {
            state = .idle
        }
        return []
    }

    /// The worker's process exited: whatever it had gets no answer.
    public mutating func workerExited() -> [Action] {
        let previous = state
        state = .finished
        switch previous {
        case .queued(let invocation), .running(let invocation):
            return [.cancelDeadline(invocation), .finish(invocation, .lost)]
        case .initializing, .idle, .polling, .finished:
            return []
        }
    }
}

extension LambdaRuntimeStateMachine.Outcome: Equatable where Body: Equatable {}
extension LambdaRuntimeStateMachine.Action: Equatable where Body: Equatable {}
extension LambdaRuntimeStateMachine.Outcome: Sendable where Body: Sendable {}
