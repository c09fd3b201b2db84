import NIOCore
import Synchronization

/// Notices when a client goes away in the middle of a request, and cancels the work done for it.
///
/// The connection's ``ConnectionGuardHandler`` marks its watch closed when the client closes its side
/// (`inputClosed`: Hummingbird allows half-closure, so the channel itself stays open) or the connection drops.
/// The request handler runs upstream work through ``cancellingOnDisconnect(_:)``, which cancels that work at that
/// moment: the chain's `chat` or `stream` is cancelled with it, and so is its upstream HTTP request. This works
/// while the upstream is silent too, which a failed write alone would not notice.
///
/// The work runs as the only child task of a task group, and the handler's task waits for a continuation that
/// either the child's end or the client's leaving resumes; on leaving, the handler's task cancels the group.
/// Nothing holds a reference to a task beyond its scope (no `UnsafeCurrentTask` is kept), and cancellation
/// handlers run in the handler's task, never on an event loop or under this watch's lock.
///
/// A client that half-closes its side after sending a request and still waits for the answer is treated as gone;
/// OpenAI clients never do that.
final class ConnectionWatch: Sendable {
    private enum Waiter {
        /// No work is watched.
        case none
        /// Work runs; nobody waits yet.
        case running
        /// The handler's task waits for the work's end or the client's leaving.
        case waiting(CheckedContinuation<Bool, Never>)
        /// The work ended before the handler's task waited.
        case finished
    }

    private struct State: ~Copyable {
        var closed = false
        var waiter = Waiter.none
    }

    private let state = Mutex(State())

    /// Runs `operation`, cancelling it if the client goes away before it returns (or has already).
    ///
    /// - Parameter operation: The work; it runs in a child task (with the caller's task executor preference, its
    ///   priority and task-local values), cancelled when the client leaves or the caller's task is cancelled.
    /// - Returns: What `operation` returned.
    /// - Throws: What `operation` threw (typically `CancellationError` once cancelled).
    func cancellingOnDisconnect<T: Sendable>(_ operation: @escaping @Sendable () async throws -> T) async throws -> T {
        try await withThrowingTaskGroup(of: T.self) { group in
            state.withLock { $0.waiter = .running }
            group.addTask {
                defer { self.workEnded() }
                return try await operation()
            }
            let gone = await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
                let resumeNow: Bool? = state.withLock { state in
                    if state.closed { return true }
                    if case .finished = state.waiter {
                        state.waiter = .none
                        return false
                    }
                    state.waiter = .waiting(continuation)
                    return nil
                }
                if let resumeNow { continuation.resume(returning: resumeNow) }
            }
            if gone { group.cancelAll() }
            defer { state.withLock { $0.waiter = .none } }
            guard let result = try await group.next() else { throw CancellationError() }
            return result
        }
    }

    /// The watched work ended: wakes the handler's task if it waits.
    private func workEnded() {
        let continuation: CheckedContinuation<Bool, Never>? = state.withLock { state in
            switch state.waiter {
            case .waiting(let continuation):
                state.waiter = .none
                return continuation
            case .running:
                state.waiter = .finished
                return nil
            case .finished, .none:
                return nil
            }
        }
        continuation?.resume(returning: false)
    }

    /// Whether the client has gone.
    var isClosed: Bool { state.withLock { $0.closed } }

    /// Marks the client gone and wakes the handler's task, if it waits, to cancel its work.
    func clientWentAway() {
        let continuation: CheckedContinuation<Bool, Never>? = state.withLock { state in
            guard !state.closed else { return nil }
            state.closed = true
            guard case .waiting(let continuation) = state.waiter else { return nil }
            state.waiter = .none
            return continuation
        }
        // Outside the lock: the handler's task runs (and cancels) on its own executor.
        continuation?.resume(returning: true)
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
