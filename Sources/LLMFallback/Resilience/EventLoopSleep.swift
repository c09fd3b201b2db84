import NIOCore
import Synchronization

/// Sleeps on a SwiftNIO event loop's timer (through ``DeadlineTimer``) instead of Swift Concurrency's global
/// delayed-job queue.
///
/// The chain arms a timer for every attempt (its timeout) and cancels it as soon as the answer is in, usually
/// within a millisecond. On Linux, `Task.sleep` hands its deadline to a libdispatch timer that stays registered
/// until it expires even when the sleep is cancelled, and waking for it costs a thread hop: at gateway rates
/// (thousands of requests a second, a 30 s timeout) that is hundreds of thousands of pending timers, a steadily
/// growing heap and a dispatch-thread wake-up per request. A ``DeadlineTimer`` entry leaves its table when it is
/// cancelled, and arming one wakes no thread unless it comes due before every other.
///
/// Used for the real clock only: an injected clock (tests' `ManualClock`) keeps its own `sleep`.
enum EventLoopSleep {
    /// Sleeps for `duration`, or throws `CancellationError` as soon as the task is cancelled.
    static func sleep(for duration: Duration) async throws {
        guard duration > .zero else {
            try Task.checkCancellation()
            return
        }
        let sleeper = Sleeper()
        try await withTaskCancellationHandler {
            try await withUnsafeThrowingContinuation { (continuation: UnsafeContinuation<Void, any Error>) in
                sleeper.start(continuation, after: duration)
            }
        } onCancel: {
            sleeper.cancel()
        }
    }

    /// One sleep: the continuation, resumed exactly once by whichever comes first of the timer and the cancellation.
    final class Sleeper: Sendable {
        private enum State {
            case idle
            case waiting(UnsafeContinuation<Void, any Error>, ScheduledAction)
            /// The timer fired before the continuation was stored.
            case fired
            /// The task was cancelled before the continuation was stored.
            case cancelled
            case finished
        }

        private let state = Mutex<State>(.idle)

        func start(_ continuation: UnsafeContinuation<Void, any Error>, after duration: Duration) {
            let callback = ScheduledAction.onEventLoop(after: duration) { self.fire() }
            if case .none = callback {
                // The loop is shutting down (the process is ending): no timer will fire, so end the sleep now.
                let resume = state.locked { state -> Bool in
                    if case .finished = state { return false }
                    state = .finished
                    return true
                }
                if resume { continuation.resume(throwing: CancellationError()) }
                return
            }
            enum Next { case wait, resume, throwCancelled }
            let next = state.locked { state -> Next in
                switch state {
                case .idle:
                    state = .waiting(continuation, callback)
                    return .wait
                case .fired:
                    state = .finished
                    return .resume
                case .cancelled:
                    state = .finished
                    return .throwCancelled
                case .waiting, .finished:
                    preconditionFailure("a sleep started twice")
                }
            }
            switch next {
            case .wait: break
            case .resume: continuation.resume()
            case .throwCancelled:
                callback.cancel()
                continuation.resume(throwing: CancellationError())
            }
        }

        private func fire() {
            let continuation = state.locked { state -> UnsafeContinuation<Void, any Error>? in
                switch state {
                case .idle:
                    state = .fired
                    return nil
                case .waiting(let continuation, _):
                    state = .finished
                    return continuation
                case .fired, .cancelled, .finished:
                    return nil
                }
            }
            continuation?.resume()
        }

        func cancel() {
            let waiting = state.locked { state -> (UnsafeContinuation<Void, any Error>, ScheduledAction)? in
                switch state {
                case .idle:
                    state = .cancelled
                    return nil
                case .waiting(let continuation, let callback):
                    state = .finished
                    return (continuation, callback)
                case .fired, .cancelled, .finished:
                    return nil
                }
            }
            guard let (continuation, callback) = waiting else { return }
            callback.cancel()
            continuation.resume(throwing: CancellationError())
        }
    }
}
