import NIOCore
import Synchronization

/// A response body still arriving on an ``HTTP1Connection``: the connection pushes parts, one reader pulls them.
///
/// Parts wait in a buffer until read; past the high-water mark the connection stops reading from the socket
/// until the reader has caught up. Cancelling the reading task closes the connection; a reader that goes away
/// before the end lets the connection read the rest and drop it.
final class StreamedResponseBody: Sendable {
    private struct State {
        var parts = CircularBuffer<ByteBuffer>()
        var bufferedBytes = 0
        var paused = false
        /// `nil` while the body is arriving.
        var end: Result<Void, any Error>?
        var reader: UnsafeContinuation<ByteBuffer?, any Error>?
        var abandoned = false
        /// The request whose timeout bounds this body too (``NIOHTTPClientTransport/send(_:timeout:boundingBody:)``),
        /// told when the body ends so it cancels its timer.
        var expiry: RequestExecution?
        /// Every byte is here, the end about to be delivered (``willFinish()``): past the timer's reach.
        var arrived = false
    }

    let connection: HTTP1Connection
    private let highWater: Int
    private let state: Mutex<State>

    init(connection: HTTP1Connection, initial: ByteBuffer?, highWater: Int) {
        self.connection = connection
        self.highWater = highWater
        var state = State()
        if let initial {
            state.parts.append(initial)
            state.bufferedBytes = initial.readableBytes
        }
        self.state = Mutex(state)
    }

    // MARK: The connection's side (on its event loop)

    /// Delivers a part; `true` when the buffer is over the high-water mark and reading should pause.
    func push(_ part: ByteBuffer) -> Bool {
        enum Next { case resume(UnsafeContinuation<ByteBuffer?, any Error>), pause, none }
        let next = state.locked { state -> Next in
            guard state.end == nil, !state.abandoned else { return .none }
            if let reader = state.reader {
                state.reader = nil
                return .resume(reader)
            }
            state.parts.append(part)
            state.bufferedBytes += part.readableBytes
            if state.bufferedBytes >= highWater, !state.paused {
                state.paused = true
                return .pause
            }
            return .none
        }
        switch next {
        case .resume(let reader):
            reader.resume(returning: part)
            return false
        case .pause:
            return true
        case .none:
            return false
        }
    }

    /// The body is complete, or failed with `error`.
    func finish(throwing error: (any Error)? = nil) {
        let (reader, expiry) = state.locked { state -> (UnsafeContinuation<ByteBuffer?, any Error>?, RequestExecution?) in
            guard state.end == nil else { return (nil, nil) }
            state.end = error.map { .failure($0) } ?? .success(())
            defer { state.reader = nil; state.expiry = nil }
            return (state.reader, state.expiry)
        }
        expiry?.bodyEnded()
        guard let reader else { return }
        if let error { reader.resume(throwing: error) } else { reader.resume(returning: nil) }
    }

    /// The body is complete and ``finish(throwing:)`` follows, once the connection is back in the pool: a timer
    /// firing in between must not fail it.
    func willFinish() {
        state.locked { $0.arrived = true }
    }

    /// Hands the bound of the body to `execution`'s timer; a body that ended already cancels it at once.
    func bound(by execution: RequestExecution) {
        let ended = state.locked { state -> Bool in
            if state.end != nil || state.abandoned { return true }
            state.expiry = execution
            return false
        }
        if ended { execution.bodyEnded() }
    }

    /// The request's timeout passed: unless the whole body is here, the reader gets `error` and the connection
    /// closes.
    func expire(with error: any Error) {
        fail(with: error, unlessComplete: true)
    }

    // MARK: The reader's side

    func next() async throws -> ByteBuffer? {
        if Task.isCancelled {
            cancel()
            throw CancellationError()
        }
        let step = state.locked { state in take(&state) }
        switch step {
        case .part(let part, let resumeReading):
            if resumeReading { notifyDrained() }
            return part
        case .end(let end):
            try end.get()
            return nil
        case .wait:
            return try await withTaskCancellationHandler {
                try await withUnsafeThrowingContinuation { (continuation: UnsafeContinuation<ByteBuffer?, any Error>) in
                    let step = state.locked { state -> Step in
                        let step = take(&state)
                        if case .wait = step { state.reader = continuation }
                        return step
                    }
                    switch step {
                    case .part(let part, let resumeReading):
                        if resumeReading { notifyDrained() }
                        continuation.resume(returning: part)
                    case .end(.success):
                        continuation.resume(returning: nil)
                    case .end(.failure(let error)):
                        continuation.resume(throwing: error)
                    case .wait:
                        break
                    }
                }
            } onCancel: {
                cancel()
            }
        }
    }

    private enum Step { case part(ByteBuffer, resumeReading: Bool), end(Result<Void, any Error>), wait }

    private func take(_ state: inout State) -> Step {
        if let part = state.parts.popFirst() {
            state.bufferedBytes -= part.readableBytes
            var resumeReading = false
            if state.paused, state.bufferedBytes <= highWater / 4 {
                state.paused = false
                resumeReading = true
            }
            return .part(part, resumeReading: resumeReading)
        }
        if let end = state.end { return .end(end) }
        return .wait
    }

    private func notifyDrained() {
        let connection = connection
        connection.eventLoop.execute { connection.bodyDrained(self) }
    }

    /// The reading task was cancelled: the body fails and, unless it was complete, the connection closes.
    func cancel() {
        fail(with: CancellationError())
    }

    /// The body fails with `error` for its reader (parts still buffered are dropped) and, unless it was complete,
    /// the connection closes.
    private func fail(with error: any Error, unlessComplete: Bool = false) {
        let (reader, closeConnection, expiry) = state.locked { state -> (UnsafeContinuation<ByteBuffer?, any Error>?, Bool, RequestExecution?) in
            let incomplete = state.end == nil
            if unlessComplete, !incomplete || state.arrived { return (nil, false, nil) }
            state.end = .failure(error)
            state.parts.removeAll()
            state.bufferedBytes = 0
            defer { state.reader = nil; state.expiry = nil }
            return (state.reader, incomplete, state.expiry)
        }
        expiry?.bodyEnded()
        reader?.resume(throwing: error)
        if closeConnection {
            let connection = connection
            connection.eventLoop.execute { connection.abortBody(self) }
        }
    }

    /// Nobody holds the body any more.
    func abandon() {
        let (incomplete, expiry) = state.locked { state -> (Bool, RequestExecution?) in
            state.abandoned = true
            state.parts.removeAll()
            state.bufferedBytes = 0
            defer { state.expiry = nil }
            return (state.end == nil, state.expiry)
        }
        // Nobody is left to wait for the rest: nothing to bound.
        expiry?.bodyEnded()
        if incomplete {
            let connection = connection
            connection.eventLoop.execute { connection.bodyAbandoned(self) }
        }
    }

    /// Held by the ``ResponseBody`` and its iterators: when the last one goes, the body is abandoned.
    final class Handle: Sendable {
        let body: StreamedResponseBody
        init(_ body: StreamedResponseBody) { self.body = body }
        deinit { body.abandon() }
    }
}
