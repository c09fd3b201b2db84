import NIOCore
import Synchronization

/// Notices when a client goes away in the middle of a request, and cancels the work done for it.
///
/// The connection's ``ConnectionGuardHandler`` marks its watch closed when the client closes its side
/// (`inputClosed`: Hummingbird allows half-closure, so the channel itself stays open) or the connection drops.
/// The request handler runs upstream work through ``cancellingOnDisconnect(_:)``, which cancels the handling task
/// at that moment: the chain's `chat` or `stream` is cancelled with it, and so is its upstream HTTP request. This
/// works while the upstream is silent too, which a failed write alone would not notice.
///
/// Cancelling the running task from an event loop needs a reference to it, and the only one Swift offers for the
/// current task is `UnsafeCurrentTask`, valid while the task runs. The watch keeps it only while armed and makes
/// that lifetime hold by construction: a cancellation takes the reference out under the lock and marks the watch
/// `cancelling`, calls `cancel()` after leaving the lock (so the task's cancellation handlers never run under it),
/// and the task, before it may leave ``cancellingOnDisconnect(_:)``, waits (suspended, on a continuation) until
/// that call has returned. A child task in a task group would avoid the reference altogether, at a price measured
/// at 4 to 7 µs per request on this machine's event loops (a task, a group and a resumption), about a tenth of
/// the gateway's whole cost per request; this construction costs two lock operations when nobody leaves.
///
/// A client that half-closes its side after sending a request and still waits for the answer is treated as gone;
/// OpenAI clients never do that.
final class ConnectionWatch: Sendable {
    /// The task to cancel, valid while armed: it cannot leave ``cancellingOnDisconnect(_:)`` before it is
    /// disarmed, and it cannot be disarmed while a cancellation uses it.
    private struct ArmedTask: @unchecked Sendable {
        let task: UnsafeCurrentTask
    }

    private enum Armed {
        /// No work is watched.
        case none
        /// Work runs; the client leaving cancels this task.
        case armed(ArmedTask)
        /// A cancellation took the task and is calling `cancel()` outside the lock.
        case cancelling
        /// As `cancelling`, and the task waits to leave until `cancel()` has returned.
        case cancellingAwaited(CheckedContinuation<Void, Never>)
    }

    private struct State {
        var closed = false
        var armed = Armed.none
    }

    private let state = Mutex(State())

    /// Runs `operation`, cancelling the current task if the client goes away before it returns (or has already).
    func cancellingOnDisconnect<T>(_ operation: () async throws -> T) async throws -> T {
        let alreadyGone = withUnsafeCurrentTask { task -> Bool in
            guard let task else { return false }
            return state.withLock { state in
                if state.closed { return true }
                state.armed = .armed(ArmedTask(task: task))
                return false
            }
        }
        if alreadyGone {
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

    /// Stops watching; waits, if a cancellation is calling `cancel()` on this task right now, until it returned.
    private func disarm() async {
        let mustWait = state.withLock { state -> Bool in
            switch state.armed {
            case .cancelling, .cancellingAwaited:
                return true
            case .armed, .none:
                state.armed = .none
                return false
            }
        }
        guard mustWait else { return }
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let resumeNow = state.withLock { state -> Bool in
                guard case .cancelling = state.armed else {
                    // The cancellation finished in between.
                    state.armed = .none
                    return true
                }
                state.armed = .cancellingAwaited(continuation)
                return false
            }
            if resumeNow { continuation.resume() }
        }
    }

    /// Whether the client has gone.
    var isClosed: Bool { state.withLock { $0.closed } }

    /// Marks the client gone and cancels the armed task, if any (outside the lock).
    func clientWentAway() {
        let armed: ArmedTask? = state.withLock { state in
            guard !state.closed else { return nil }
            state.closed = true
            guard case .armed(let task) = state.armed else { return nil }
            state.armed = .cancelling
            return task
        }
        guard let armed else { return }
        // The task is alive: it cannot be disarmed, so cannot return, until the state leaves `cancelling`.
        armed.task.cancel()
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            defer { state.armed = .none }
            guard case .cancellingAwaited(let continuation) = state.armed else { return nil }
            return continuation
        }
        waiter?.resume()
    }
}

/// The watches of the open connections, by channel.
final class ConnectionRegistry: Sendable {
    private let watches = Mutex<[ObjectIdentifier: ConnectionWatch]>([:])

    /// The watch of `channel`, if the connection guard is on its pipeline.
    func watch(for channel: any Channel) -> ConnectionWatch? {
        let id = ObjectIdentifier(channel)
        return watches.withLock { $0[id] }
    }

    func register(_ channel: any Channel) -> ConnectionWatch {
        let watch = ConnectionWatch()
        let id = ObjectIdentifier(channel)
        watches.withLock { $0[id] = watch }
        return watch
    }

    func unregister(_ channel: any Channel) {
        let id = ObjectIdentifier(channel)
        watches.withLock { _ = $0.removeValue(forKey: id) }
    }

    /// The number of connections watched (for tests).
    var count: Int { watches.withLock { $0.count } }
}
