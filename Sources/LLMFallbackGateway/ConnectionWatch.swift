import LLMFallback
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
/// Cancelling the running task from an event loop is ``TaskCancellation``'s work (the library's one primitive
/// for it, shared with the chain's attempt deadlines): no task per request, and no cancellation under a lock.
///
/// A client that half-closes its side after sending a request and still waits for the answer is treated as gone;
/// OpenAI clients never do that.
final class ConnectionWatch: Sendable {
    private let cancellation = TaskCancellation()

    /// Runs `operation`, cancelling the current task if the client goes away before it returns (or has already).
    func cancellingOnDisconnect<T>(_ operation: () async throws -> T) async throws -> T {
        try await cancellation.run(operation)
    }

    /// Whether the client has gone.
    var isClosed: Bool { cancellation.isCancelled }

    /// Marks the client gone and cancels the running task, if any (outside the lock).
    func clientWentAway() {
        cancellation.cancel()
    }
}

/// The watches of the open connections, by channel.
final class ConnectionRegistry: Sendable {
    private let watches = Mutex<[ObjectIdentifier: ConnectionWatch]>([:])

    /// The watch of `channel`, if the connection guard is on its pipeline.
    func watch(for channel: any Channel) -> ConnectionWatch? {
        let id = ObjectIdentifier(channel)
        return watches.locked { $0[id] }
    }

    func register(_ channel: any Channel) -> ConnectionWatch {
        let watch = ConnectionWatch()
        let id = ObjectIdentifier(channel)
        watches.locked { $0[id] = watch }
        return watch
    }

    func unregister(_ channel: any Channel) {
        let id = ObjectIdentifier(channel)
        watches.locked { _ = $0.removeValue(forKey: id) }
    }

    /// The number of connections watched (for tests).
    var count: Int { watches.locked { $0.count } }
}
