import NIOConcurrencyHelpers
import ServiceLifecycle

/// Fetches key sets again when the request path asks (a stale set, an unknown `kid`), one at a
/// time, off the event loops. The request path only enqueues (`KeyRefreshQueue`); it never
/// starts a task of its own.
public struct KeyRefreshService: Service {
    private let queue: KeyRefreshQueue

    public init() { self.queue = .shared }

    init(queue: KeyRefreshQueue) { self.queue = queue }

    public func run() async {
        let queue = self.queue
        queue.open()
        await withTaskCancellationHandler {
            await withGracefulShutdownHandler {
                while let store = await queue.next() {
                    await store.refreshNow()
                }
            } onGracefulShutdown: {
                queue.close()
            }
        } onCancel: {
            queue.close()
        }
    }
}

/// Key stores waiting for a refresh, and the one consumer waiting for them.
final class KeyRefreshQueue: Sendable {
    /// The gateway's queue: key stores are made deep inside config snapshots, which have no
    /// other way to reach the running service.
    static let shared = KeyRefreshQueue()

    private struct State {
        var pending: [JWTKeyStore] = []
        var consumer: CheckedContinuation<JWTKeyStore?, Never>?
        var closed = false
    }

    private let state = NIOLockedValueBox(State())

    /// Asks for `store` to be loaded again. The store makes sure it is not queued twice.
    func enqueue(_ store: JWTKeyStore) {
        let consumer = state.withLockedValue { state -> CheckedContinuation<JWTKeyStore?, Never>? in
            if let consumer = state.consumer {
                state.consumer = nil
                return consumer
            }
            state.pending.append(store)
            return nil
        }
        consumer?.resume(returning: store)
    }

    /// The next store to refresh; nil once `close` was called.
    func next() async -> JWTKeyStore? {
        await withCheckedContinuation { continuation in
            let result = state.withLockedValue { state -> JWTKeyStore?? in
                if state.closed { return .some(nil) }
                if !state.pending.isEmpty { return .some(state.pending.removeFirst()) }
                state.consumer = continuation
                return .none
            }
            if case .some(let store) = result { continuation.resume(returning: store) }
        }
    }

    /// A consumer starts: later `next` calls wait for work again.
    func open() {
        state.withLockedValue { $0.closed = false }
    }

    /// The consumer stops: a waiting `next` returns nil. Stores still queued wait for the next consumer.
    func close() {
        let consumer = state.withLockedValue { state -> CheckedContinuation<JWTKeyStore?, Never>? in
            state.closed = true
            defer { state.consumer = nil }
            return state.consumer
        }
        consumer?.resume(returning: nil)
    }
}
