import Synchronization

/// Cancels one running task from elsewhere (a timer on an event loop, a connection that closed), without a task
/// of its own.
///
/// Cancelling a task from another thread needs a reference to it, and the only one Swift offers for the current
/// task is `UnsafeCurrentTask`, valid while the task runs. This type keeps it only while ``run(_:)`` runs and
/// makes that lifetime hold by construction: ``cancel()`` takes the reference out under the lock and marks the
/// state `cancelling`, calls `cancel()` after leaving the lock (so the task's cancellation handlers never run
/// under it), and the task, before it may leave ``run(_:)``, waits (suspended, on a continuation) until that call
/// has returned. A child task in a task group would avoid the reference altogether, at a price measured at 4 to
/// 7 µs per call on this machine's event loops (a task, a group and a resumption); this costs two lock
/// operations when nothing is cancelled. (Review finding 19: the reference was stored with no such guarantee,
/// and cancelled under a lock.)
///
/// Once cancelled, it stays cancelled: a later ``run(_:)`` cancels its task at once.
package final class TaskCancellation: Sendable {
    private struct ArmedTask: @unchecked Sendable {
        // Only used while the task is provably inside `run` (see the type's discussion).
        let task: UnsafeCurrentTask
    }

    private enum State {
        /// Nothing runs; not cancelled.
        case idle
        /// A task runs inside `run`; `cancel()` cancels it.
        case armed(ArmedTask)
        /// `cancel()` took the task and is calling `cancel()` on it outside the lock.
        case cancelling
        /// As `cancelling`, and the task waits to leave `run` until that call has returned.
        case cancellingAwaited(CheckedContinuation<Void, Never>)
        /// Cancelled: whatever runs from now on is cancelled at once.
        case cancelled
    }

    private let state = Mutex(State.idle)

    /// Creates a cancellation that has not happened.
    package init() {}

    /// Whether ``cancel()`` was called.
    package var isCancelled: Bool {
        state.locked { state in
            switch state {
            case .idle, .armed: return false
            case .cancelling, .cancellingAwaited, .cancelled: return true
            }
        }
    }

    /// Runs `operation` in the current task, which ``cancel()`` cancels (at once, if it already happened).
    package func run<T, Failure: Error>(_ operation: () async throws(Failure) -> T) async throws(Failure) -> T {
        let cancelNow = withUnsafeCurrentTask { task -> Bool in
            guard let task else { return false }
            return state.locked { state in
                if case .cancelled = state { return true }
                state = .armed(ArmedTask(task: task))
                return false
            }
        }
        if cancelNow {
            // Within the closure's scope, outside the lock.
            withUnsafeCurrentTask { $0?.cancel() }
        }
        do {
            let value = try await operation()
            await disarm()
            return value
        } catch {
            await disarm()
            throw error
        }
    }

    /// Cancels the running task, if any (outside the lock), and every later one.
    package func cancel() {
        let armed = state.locked { state -> ArmedTask? in
            switch state {
            case .armed(let task):
                state = .cancelling
                return task
            case .idle:
                state = .cancelled
                return nil
            case .cancelling, .cancellingAwaited, .cancelled:
                return nil
            }
        }
        guard let armed else { return }
        // The task is alive: it cannot leave `run` until the state leaves `cancelling`.
        armed.task.cancel()
        let waiter = state.locked { state -> CheckedContinuation<Void, Never>? in
            defer { state = .cancelled }
            guard case .cancellingAwaited(let continuation) = state else { return nil }
            return continuation
        }
        waiter?.resume()
    }

    /// Stops watching the task; waits, if `cancel()` is calling `cancel()` on it right now, until that returned.
    private func disarm() async {
        let mustWait = state.locked { state -> Bool in
            switch state {
            case .cancelling, .cancellingAwaited:
                return true
            case .armed:
                state = .idle
                return false
            case .idle, .cancelled:
                return false
            }
        }
        guard mustWait else { return }
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let resumeNow = state.locked { state -> Bool in
                guard case .cancelling = state else { return true }  // the cancellation finished in between
                state = .cancellingAwaited(continuation)
                return false
            }
            if resumeNow { continuation.resume() }
        }
    }
}
