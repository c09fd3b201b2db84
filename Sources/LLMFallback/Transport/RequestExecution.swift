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
        /// The head is in and the request's timer goes on to bound `body` (``boundsBody``).
        case readingBody(StreamedResponseBody)
        case finished
    }

    private struct State {
        var phase = Phase.pending
        var continuation: UnsafeContinuation<TransportResponse, any Error>?
        var timer: NIOScheduledCallback?
        /// The bound on the wait for a connection, while queued.
        var waitTimer: NIOScheduledCallback?
        /// How often the request was refused by a connection before anything of it was written.
        var refusals = 0
        /// Cancelled or timed out before `start`.
        var earlyError: (any Error)?
    }

    let pool: HTTPConnectionPool
    let key: ConnectionKey
    let head: HTTPRequestHead
    let body: ByteBuffer?
    /// The request says `Connection: close`: the connection closes after the response.
    let closeAfter: Bool
    let timeout: Duration
    let deadline: NIODeadline
    /// The timeout bounds the whole response, its body included, not only the wait for the head.
    let boundsBody: Bool
    private let state = Mutex<State>(State())

    /// How often a request refused before anything of it was written (a connection that closed on its way to
    /// the request) is given another connection.
    static let maximumRefusals = 3

    init(
        pool: HTTPConnectionPool,
        key: ConnectionKey,
        head: HTTPRequestHead,
        body: ByteBuffer?,
        closeAfter: Bool = false,
        timeout: Duration,
        boundsBody: Bool = false
    ) {
        self.pool = pool
        self.key = key
        self.head = head
        self.body = body
        self.closeAfter = closeAfter
        self.timeout = timeout
        self.boundsBody = boundsBody
        self.deadline = .now() + .nanoseconds(timeout.clampedNanoseconds)
    }

    func start(_ continuation: UnsafeContinuation<TransportResponse, any Error>) {
        let early = state.locked { state -> (any Error)? in
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
        let armed = state.locked { state -> Bool in
            switch state.phase {
            case .finished, .readingBody: return true
            case .pending, .executing: return state.timer != nil
            }
        }
        if armed { return }
        guard let timer = try? loop.scheduleCallback(at: deadline, handler: self) else { return }
        let keep = state.locked { state -> Bool in
            switch state.phase {
            case .finished, .readingBody: return false
            case .pending, .executing: break
            }
            if state.timer != nil { return false }
            state.timer = timer
            return true
        }
        if !keep { timer.cancel() }
    }

    /// Runs the request on `connection`; `false` when the request already ended (the connection stays unused).
    func attach(to connection: HTTP1Connection) -> Bool {
        let attached = state.locked { state -> (Bool, NIOScheduledCallback?) in
            guard case .pending = state.phase else { return (false, nil) }
            state.phase = .executing(connection)
            defer { state.waitTimer = nil }
            return (true, state.waitTimer)
        }
        attached.1?.cancel()
        guard attached.0 else { return false }
        if connection.eventLoop.inEventLoop {
            connection.execute(self)
        } else {
            connection.eventLoop.execute { connection.execute(self) }
        }
        return true
    }

    /// The response head is in: resumes the caller. `false` when the request already ended.
    ///
    /// - Parameter body: The body still arriving, if it is: when the request ``boundsBody``, its timer goes on to
    ///   bound that body, which cancels the timer when it ends.
    func succeed(_ response: TransportResponse, streaming body: StreamedResponseBody? = nil) -> Bool {
        let taken = state.locked { state -> (UnsafeContinuation<TransportResponse, any Error>?, NIOScheduledCallback?, bound: Bool)? in
            guard case .executing = state.phase else { return nil }
            defer { state.continuation = nil }
            // No timer means the loop refused to schedule one (it is shutting down, and the connection with it).
            if boundsBody, let body, state.timer != nil {
                state.phase = .readingBody(body)
                return (state.continuation, nil, true)
            }
            state.phase = .finished
            defer { state.timer = nil }
            return (state.continuation, state.timer, false)
        }
        guard let taken else { return false }
        taken.1?.cancel()
        if taken.bound { body?.bound(by: self) }
        taken.0?.resume(returning: response)
        return true
    }

    /// The body this request's timer bounds ended (complete, failed, cancelled or abandoned): the timer goes.
    func bodyEnded() {
        let timer = state.locked { state -> NIOScheduledCallback? in
            guard case .readingBody = state.phase else { return nil }
            state.phase = .finished
            defer { state.timer = nil }
            return state.timer
        }
        timer?.cancel()
    }

    /// The request failed. `retryable` only when nothing of it was written (the connection it was given had
    /// closed meanwhile): it then goes to a new connection, a few times at most. A request whose bytes went out
    /// is never sent again: the server may have acted on it.
    func fail(_ error: any Error, retryable: Bool) {
        enum Next {
            case retry
            case resume(UnsafeContinuation<TransportResponse, any Error>?, NIOScheduledCallback?, NIOScheduledCallback?)
            case nothing
        }
        let next = state.locked { state -> Next in
            switch state.phase {
            case .finished, .readingBody: return .nothing  // the head is in: what fails now is the body's
            case .pending, .executing: break
            }
            if retryable, state.refusals < Self.maximumRefusals {
                state.refusals += 1
                state.phase = .pending
                return .retry
            }
            state.phase = .finished
            defer { state.continuation = nil; state.timer = nil; state.waitTimer = nil }
            return .resume(state.continuation, state.timer, state.waitTimer)
        }
        switch next {
        case .retry:
            pool.lease(for: self, fresh: true)
        case .resume(let continuation, let timer, let waitTimer):
            timer?.cancel()
            waitTimer?.cancel()
            continuation?.resume(throwing: error)
        case .nothing:
            break
        }
    }

    /// Bounds the wait in the pool's queue: at `deadline` on `loop`, a request still queued fails.
    func armWaitTimer(on loop: any EventLoop, at waitDeadline: NIODeadline) {
        guard waitDeadline < deadline else { return }  // the request's own timeout comes first
        guard let timer = try? loop.scheduleCallback(at: waitDeadline, handler: WaitExpiry(execution: self)) else { return }
        let keep = state.locked { state -> Bool in
            guard case .pending = state.phase, state.waitTimer == nil else { return false }
            state.waitTimer = timer
            return true
        }
        if !keep { timer.cancel() }
    }

    /// The wait for a connection took too long: the request fails, if it is still queued.
    func waitExpired() {
        guard pool.removeWaiter(self) else { return }
        end(with: ProviderError.transport(
            .timeout,
            key,
            "no connection free within \(pool.configuration.connectionWaitTimeout) (\(pool.configuration.maximumConnectionsPerHost) open)"
        ))
    }

    private struct WaitExpiry: NIOScheduledCallbackHandler {
        let execution: RequestExecution
        func handleScheduledCallback(eventLoop: some EventLoop) { execution.waitExpired() }
    }

    /// The task was cancelled.
    func cancel() {
        end(with: CancellationError())
    }

    func handleScheduledCallback(eventLoop: some EventLoop) {
        end(with: ProviderError.transport(.timeout, key, "no response within \(timeout)"), byTimer: true)
    }

    /// Ends the request from outside (cancellation, timeout): resumes the caller and abandons the connection.
    /// The timer (`byTimer`) also ends a body it bounds: decided under the same lock as the rest, so a head that
    /// arrives as the timer fires either finds the request ended or leaves its body to this call.
    private func end(with error: any Error, byTimer: Bool = false) {
        enum Next {
            case early
            case resume(UnsafeContinuation<TransportResponse, any Error>?, NIOScheduledCallback?, NIOScheduledCallback?, Phase)
            case expire(StreamedResponseBody)
            case nothing
        }
        let next = state.locked { state -> Next in
            if case .readingBody(let body) = state.phase {
                // The head is in: only the timer ends the body it bounds.
                guard byTimer else { return .nothing }
                state.phase = .finished
                state.timer = nil
                return .expire(body)
            }
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
            defer { state.continuation = nil; state.timer = nil; state.waitTimer = nil }
            return .resume(state.continuation, state.timer, state.waitTimer, phase)
        }
        if case .expire(let body) = next {
            body.expire(with: ProviderError.transport(.timeout, key, "no complete response within \(timeout)"))
            return
        }
        guard case .resume(let continuation, let timer, let waitTimer, let phase) = next else { return }
        timer?.cancel()
        waitTimer?.cancel()
        continuation?.resume(throwing: error)
        switch phase {
        case .pending:
            // Waiting in the queue (removed here) or connecting (the new connection goes to the pool).
            _ = pool.removeWaiter(self)
        case .executing(let connection):
            connection.eventLoop.execute { connection.abort(self) }
        case .finished, .readingBody:
            break
        }
    }
}
