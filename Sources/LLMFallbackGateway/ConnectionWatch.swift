import NIOCore
import Synchronization

/// Notices when a client goes away in the middle of a request, and cancels the work done for it.
///
/// A channel handler on each connection marks the connection's ``ConnectionWatch`` closed when the client closes its
/// side (`inputClosed`: Hummingbird allows half-closure, so the channel itself stays open) or the connection drops.
/// The request handler runs upstream work inside ``ConnectionWatch/cancellingOnDisconnect(_:)``, which cancels the
/// handling task at that moment: the chain's `chat` or `stream` is cancelled with it, and so is its upstream HTTP
/// request. This works while the upstream is silent too, which a failed write alone would not notice.
///
/// A client that half-closes its side after sending a request and still waits for the answer is treated as gone;
/// OpenAI clients never do that.
final class ConnectionWatch: Sendable {
    /// The task to cancel, valid only while armed (see ``cancellingOnDisconnect(_:)``).
    private struct ArmedTask: @unchecked Sendable {
        // Only used under the lock, while the task is known to be running (it disarms before it returns).
        let task: UnsafeCurrentTask
    }

    private struct State: ~Copyable {
        var closed = false
        var armed: ArmedTask?
    }

    private let state = Mutex(State())

    /// Runs `operation`, cancelling the current task if the client goes away before it returns (or has already).
    func cancellingOnDisconnect<T>(_ operation: () async throws -> T) async rethrows -> T {
        withUnsafeCurrentTask { task in
            guard let task else { return }
            state.withLock { state in
                if state.closed {
                    task.cancel()
                } else {
                    state.armed = ArmedTask(task: task)
                }
            }
        }
        // Disarming takes the lock, so a cancellation in progress finishes before the task can move on (and end).
        defer { state.withLock { $0.armed = nil } }
        return try await operation()
    }

    /// Whether the client has gone.
    var isClosed: Bool { state.withLock { $0.closed } }

    /// Marks the client gone and cancels the armed task, if any.
    func clientWentAway() {
        state.withLock { state in
            guard !state.closed else { return }
            state.closed = true
            // Cancelled under the lock: the task cannot disarm, return and be freed in between.
            state.armed?.task.cancel()
            state.armed = nil
        }
    }
}

/// The watches of the open connections, by channel.
final class ConnectionRegistry: Sendable {
    private let watches = Mutex<[ObjectIdentifier: ConnectionWatch]>([:])

    /// The watch of `channel`, if the disconnect handler is on its pipeline.
    func watch(for channel: any Channel) -> ConnectionWatch? {
        let id = ObjectIdentifier(channel)
        return watches.withLock { $0[id] }
    }

    fileprivate func register(_ channel: any Channel) -> ConnectionWatch {
        let watch = ConnectionWatch()
        let id = ObjectIdentifier(channel)
        watches.withLock { $0[id] = watch }
        return watch
    }

    fileprivate func unregister(_ channel: any Channel) {
        let id = ObjectIdentifier(channel)
        watches.withLock { _ = $0.removeValue(forKey: id) }
    }

    /// The number of connections watched (for tests).
    var count: Int { watches.withLock { $0.count } }
}

/// The per-connection half of ``ConnectionWatch``: passes everything through and reports the client leaving.
final class DisconnectHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny
    typealias InboundOut = NIOAny

    private let registry: ConnectionRegistry
    private var watch: ConnectionWatch?

    init(registry: ConnectionRegistry) {
        self.registry = registry
    }

    func handlerAdded(context: ChannelHandlerContext) {
        watch = registry.register(context.channel)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        finish(context.channel)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.fireChannelRead(data)
    }

    func channelInactive(context: ChannelHandlerContext) {
        finish(context.channel)
        context.fireChannelInactive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed {
            watch?.clientWentAway()
        }
        context.fireUserInboundEventTriggered(event)
    }

    private func finish(_ channel: any Channel) {
        guard let watch else { return }
        self.watch = nil
        watch.clientWentAway()
        registry.unregister(channel)
    }
}
