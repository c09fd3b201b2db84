import NIOCore
import NIOPosix
import Synchronization

/// An action scheduled on the chain's clock, until it is cancelled.
enum ScheduledAction: Sendable {
    /// On an event loop's timer (the real clock).
    case eventLoop(NIOScheduledCallback)
    /// A task sleeping on an injected clock.
    case task(Task<Void, Never>)
    /// Nothing will run (the event loops are shutting down).
    case none

    func cancel() {
        switch self {
        case .eventLoop(let callback): callback.cancel()
        case .task(let task): task.cancel()
        case .none: break
        }
    }

    /// Schedules `action` after `delay` on an event loop: the loop the caller runs on when it is one, so arming
    /// and cancelling cost no thread hop.
    static func onEventLoop(after delay: Duration, _ action: @escaping @Sendable () -> Void) -> ScheduledAction {
        let loop = MultiThreadedEventLoopGroup.singleton.any()
        do {
            return .eventLoop(try loop.scheduleCallback(in: .nanoseconds(delay.clampedNanoseconds), handler: ActionHandler(action)))
        } catch {
            return .none
        }
    }

    private struct ActionHandler: NIOScheduledCallbackHandler, Sendable {
        let action: @Sendable () -> Void
        init(_ action: @escaping @Sendable () -> Void) { self.action = action }
        func handleScheduledCallback(eventLoop: some EventLoop) { action() }
    }
}

extension Duration {
    /// In nanoseconds, saturating at `Int64.max`; negative durations are zero.
    var clampedNanoseconds: Int64 {
        let (seconds, attoseconds) = components
        if seconds < 0 || (seconds == 0 && attoseconds <= 0) { return 0 }
        if seconds >= Int64.max / 1_000_000_000 { return .max }
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }
}

/// Ends an attempt when its time is up, without a task of its own.
///
/// The attempt runs in a child task (``run(_:)``), so that cancelling it leaves the request free to fail over; a
/// timer on the chain's clock calls ``expire(_:)``, which cancels that child and keeps the reason. An attempt that
/// answers first disarms it with ``finish()``. On the real clock the timer is an event loop callback: arming and
/// disarming it costs far less than a sleeping task per attempt, and it holds no task memory while a stream runs.
final class AttemptExpiry: Sendable {
    private struct RunningTask: @unchecked Sendable {
        // Only used under the lock, while the task is known to be running (it disarms before it returns).
        let task: UnsafeCurrentTask
    }

    private struct State {
        var running: RunningTask?
        var reason: String?
        var timer: ScheduledAction?
        var finished = false
    }

    private let state = Mutex(State())

    /// Why the attempt expired; `nil` while it has not.
    var reason: String? { state.withLock { $0.reason } }

    /// Runs `operation` (in the child task), cancelled when the attempt expires (or at once if it already has).
    func run<T>(_ operation: () async -> T) async -> T {
        withUnsafeCurrentTask { task in
            guard let task else { return }
            state.withLock { state in
                if state.reason != nil {
                    task.cancel()
                } else {
                    state.running = RunningTask(task: task)
                }
            }
        }
        // Disarming takes the lock, so a cancellation in progress finishes before the task can end.
        defer { state.withLock { $0.running = nil } }
        return await operation()
    }

    /// Marks the attempt expired for `reason` and cancels its task.
    func expire(_ reason: String) {
        state.withLock { state in
            guard !state.finished, state.reason == nil else { return }
            state.reason = reason
            state.running?.task.cancel()
            state.running = nil
        }
    }

    /// Replaces the pending timer (a watchdog re-arms itself); cancels `timer` at once when the attempt is over.
    func setTimer(_ timer: ScheduledAction) {
        let previous = state.withLock { state -> ScheduledAction? in
            if state.finished { return timer }
            defer { state.timer = timer }
            return state.timer
        }
        previous?.cancel()
    }

    /// The attempt is over: the timer is cancelled and a late expiry does nothing.
    func finish() {
        let timer = state.withLock { state -> ScheduledAction? in
            state.finished = true
            defer { state.timer = nil }
            return state.timer
        }
        timer?.cancel()
    }
}
