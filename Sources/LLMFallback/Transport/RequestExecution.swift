import NIOCore
import NIOHTTP1
import Synchronization

/// One ``NIOHTTPClientTransport`` request, from the caller's continuation to the response head: resumed exactly
/// once, by the response head, a failure, the request's timeout or the task's cancellation, whichever comes first.
final class RequestExecution: NIOScheduledCallbackHandler, Sendable {
    private enum Phase {
        /// Not yet on a connection: leasing, connecting or waiting for a connection.
        case pending
        case executing(HTTP1Connection)
        case finished
    }

    private struct State {
        var phase = Phase.pending
        var continuation: UnsafeContinuation<TransportResponse, any Error>?
        var timer: NIOScheduledCallback?
        var retried = false
        /// Cancelled or timed out before `start`.
        var earlyError: (any Error)?
    }

    let pool: HTTPConnectionPool
    let key: ConnectionKey
    let head: HTTPRequestHead
    let body: ByteBuffer?
    let timeout: Duration
    let deadline: NIODeadline
    private let state = Mutex<State>(State())

    init(pool: HTTPConnectionPool, key: ConnectionKey, head: HTTPRequestHead, body: ByteBuffer?, timeout: Duration) {
        self.pool = pool
        self.key = key
        self.head = head
        self.body = body
        self.timeout = timeout
        self.deadline = .now() + .nanoseconds(timeout.clampedNanoseconds)
    }

    func start(_ continuation: UnsafeContinuation<TransportResponse, any Error>) {
        let early = state.withLock { state -> (any Error)? in
            if let error = state.earlyError { return error }
            state.continuation = continuation
            return nil
        }
        if let early {
            continuation.resume(throwing: early)
            return
        }
        pool.lease(for: self, fresh: false)
    }

    /// Arms the request's timeout on `loop`, unless it is armed already.
    func armTimer(on loop: any EventLoop) {
        let armed = state.withLock { state -> Bool in
            if case .finished = state.phase { return true }
            return state.timer != nil
        }
        if armed { return }
        guard let timer = try? loop.scheduleCallback(at: deadline, handler: self) else { return }
        let keep = state.withLock { state -> Bool in
            if case .finished = state.phase { return false }
            if state.timer != nil { return false }
            state.timer = timer
            return true
        }
        if !keep { timer.cancel() }
    }

    /// Runs the request on `connection`; `false` when the request already ended (the connection stays unused).
    func attach(to connection: HTTP1Connection) -> Bool {
        let attached = state.withLock { state -> Bool in
            guard case .pending = state.phase else { return false }
            state.phase = .executing(connection)
            return true
        }
        guard attached else { return false }
        if connection.eventLoop.inEventLoop {
            connection.execute(self)
        } else {
            connection.eventLoop.execute { connection.execute(self) }
        }
        return true
    }

    /// The response head is in: resumes the caller. `false` when the request already ended.
    func succeed(_ response: TransportResponse) -> Bool {
        let taken = state.withLock { state -> (UnsafeContinuation<TransportResponse, any Error>?, NIOScheduledCallback?)? in
            guard case .executing = state.phase else { return nil }
            state.phase = .finished
            defer { state.continuation = nil; state.timer = nil }
            return (state.continuation, state.timer)
        }
        guard let taken else { return false }
        taken.1?.cancel()
        taken.0?.resume(returning: response)
        return true
    }

    /// The request failed. When `retryable` (a reused connection closed before any response byte) and it has
    /// not been retried yet, it is sent again on a new connection.
    func fail(_ error: any Error, retryable: Bool) {
        enum Next { case retry, resume(UnsafeContinuation<TransportResponse, any Error>?, NIOScheduledCallback?), nothing }
        let next = state.withLock { state -> Next in
            if case .finished = state.phase { return .nothing }
            if retryable, !state.retried {
                state.retried = true
                state.phase = .pending
                return .retry
            }
            state.phase = .finished
            defer { state.continuation = nil; state.timer = nil }
            return .resume(state.continuation, state.timer)
        }
        switch next {
        case .retry:
            pool.lease(for: self, fresh: true)
        case .resume(let continuation, let timer):
            timer?.cancel()
            continuation?.resume(throwing: error)
        case .nothing:
            break
        }
    }

    /// The task was cancelled.
    func cancel() {
        end(with: CancellationError())
    }

    func handleScheduledCallback(eventLoop: some EventLoop) {
        end(with: ProviderError.transport(.timeout, key, "no response within \(timeout)"))
    }

    /// Ends the request from outside (cancellation, timeout): resumes the caller and abandons the connection.
    private func end(with error: any Error) {
        enum Next { case early, resume(UnsafeContinuation<TransportResponse, any Error>?, NIOScheduledCallback?, Phase), nothing }
        let next = state.withLock { state -> Next in
            guard state.continuation != nil else {
                if case .finished = state.phase { return .nothing }
                // Before `start`: it resumes at once.
                state.earlyError = error
                state.phase = .finished
                return .early
            }
            let phase = state.phase
            if case .finished = phase { return .nothing }
            state.phase = .finished
            defer { state.continuation = nil; state.timer = nil }
            return .resume(state.continuation, state.timer, phase)
        }
        guard case .resume(let continuation, let timer, let phase) = next else { return }
        timer?.cancel()
        continuation?.resume(throwing: error)
        switch phase {
        case .pending:
            // Waiting in the queue (removed here) or connecting (the new connection goes to the pool).
            pool.removeWaiter(self)
        case .executing(let connection):
            connection.eventLoop.execute { connection.abort(self) }
        case .finished:
            break
        }
    }
}
