import NIOCore
import Synchronization

/// An action scheduled on the chain's clock, until it is cancelled.
enum ScheduledAction: Sendable {
    /// On the real clock: an entry of a ``DeadlineTimer``, whose event loop timer runs it.
    case deadline(DeadlineTimer, id: UInt64)
    /// A task sleeping on an injected clock.
    case task(Task<Void, Never>)
    /// Nothing will run (the event loops are shutting down).
    case none

    func cancel() {
        switch self {
        case .deadline(let timer, let id): timer.cancel(id)
        case .task(let task): task.cancel()
        case .none: break
        }
    }

    /// Schedules `action` after `delay` on the real clock, on one of the process's ``DeadlineTimer``s: arming and
    /// cancelling cost a lock and a heap operation, and no thread hop, whatever thread the caller is on.
    static func onEventLoop(after delay: Duration, _ action: @escaping @Sendable () -> Void) -> ScheduledAction {
        let timer = DeadlineTimer.next()
        guard let id = timer.schedule(at: .now() + .nanoseconds(delay.clampedNanoseconds), action) else { return .none }
        return .deadline(timer, id: id)
    }
}

extension Duration {
    /// In nanoseconds, saturating at `Int64.max`; negative durations are zero.
    var clampedNanoseconds: Int64 {
        // From the attoseconds (an Int128): `components` traps past Int64.max seconds.
        let nanoseconds = attoseconds / 1_000_000_000
        if nanoseconds <= 0 { return 0 }
        return nanoseconds >= Int128(Int64.max) ? .max : Int64(nanoseconds)
    }
}

/// Ends an attempt when its time is up, without a task of its own.
///
/// The attempt runs in a child task (``run(_:)``), so that cancelling it leaves the request free to fail over; a
/// timer on the chain's clock calls ``expire(_:)``, which cancels that child (through ``TaskCancellation``, never
/// under a lock) and keeps the reason. An attempt that answers first disarms it with ``finish()``. On the real
/// clock the timer is an entry of a ``DeadlineTimer``: arming and disarming it costs far less than a sleeping task
/// (or an event loop timer) per attempt, and it holds no task memory while a stream runs.
final class AttemptExpiry: Sendable {
    private struct State {
        var reason: String?
        var timer: ScheduledAction?
        var finished = false
    }

    private let state = Mutex(State())
    private let cancellation = TaskCancellation()

    /// Why the attempt expired; `nil` while it has not.
    var reason: String? { state.locked { $0.reason } }

    /// Whether ``finish()`` was called.
    var isFinished: Bool { state.locked { $0.finished } }

    /// Runs `operation` (in the child task), cancelled when the attempt expires (or at once if it already has).
    func run<T>(_ operation: () async -> T) async -> T {
        await cancellation.run(operation)
    }

    /// Marks the attempt expired for `reason` and cancels its task.
    func expire(_ reason: String) {
        let expired = state.locked { state -> Bool in
            guard !state.finished, state.reason == nil else { return false }
            state.reason = reason
            return true
        }
        if expired { cancellation.cancel() }
    }

    /// Replaces the pending timer (a watchdog re-arms itself); cancels `timer` at once when the attempt is over.
    func setTimer(_ timer: ScheduledAction) {
        let previous = state.locked { state -> ScheduledAction? in
            if state.finished { return timer }
            defer { state.timer = timer }
            return state.timer
        }
        previous?.cancel()
    }

    /// The attempt is over: the timer is cancelled and a late expiry does nothing.
    func finish() {
        let timer = state.locked { state -> ScheduledAction? in
            state.finished = true
            defer { state.timer = nil }
            return state.timer
        }
        timer?.cancel()
    }
}
