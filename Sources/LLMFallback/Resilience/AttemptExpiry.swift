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
        // From the attoseconds (an Int128): `components` traps past Int64.max seconds.
        let nanoseconds = attoseconds / 1_000_000_000
        if nanoseconds <= 0 { return 0 }
        return nanoseconds >= Int128(Int64.max) ? .max : Int64(nanoseconds)
    }
}

/// Ends an attempt when its time is up, without a sleeping task.
///
/// ``run(_:)`` runs the attempt in a child task of a group, beside a second child that waits (on a continuation,
/// without a timer of its own) for the attempt to expire or end. A timer on the chain's clock calls
/// ``expire(_:)``, which wakes that waiter; the group then cancels the attempt, leaving the request free to fail
/// over. On the real clock the timer is an event loop callback: arming and disarming it costs far less than a
/// sleeping task per attempt, and it holds no task memory while a stream runs.
///
/// Cancellation stays structured: nothing stores a reference to a task or cancels one from another thread, and
/// no lock is held while anything is resumed or cancelled (review finding 19).
final class AttemptExpiry: Sendable {
    private struct State {
        var reason: String?
        var timer: ScheduledAction?
        var finished = false
        var waiterCancelled = false
        var waiter: CheckedContinuation<Void, Never>?
    }

    private let state = Mutex(State())

    /// Why the attempt expired; `nil` while it has not.
    var reason: String? { state.withLock { $0.reason } }

    /// Runs `operation` in a child task, cancelled when the attempt expires (or at once if it already has).
    ///
    /// - Returns: What `operation` returned (after a cancellation, whatever it returns then); `nil` only when the
    ///   group ended without it, which cannot happen.
    func run<T: Sendable>(_ operation: @escaping @Sendable () async -> T) async -> T? {
        await withTaskGroup(of: T?.self) { group in
            group.addTask { await operation() }
            group.addTask {
                await self.waitForExpiryOrEnd()
                return nil
            }
            var value: T?
            while let next = await group.next() {
                if let next {
                    value = next
                    finish()  // wakes the waiter, so the group can end
                } else {
                    group.cancelAll()  // expired (or already finished: then this cancels nothing running)
                }
            }
            return value
        }
    }

    private func waitForExpiryOrEnd() async {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let now = state.withLock { state -> Bool in
                    if state.reason != nil || state.finished || state.waiterCancelled { return true }
                    state.waiter = continuation
                    return false
                }
                if now { continuation.resume() }
            }
        } onCancel: {
            let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
                state.waiterCancelled = true
                defer { state.waiter = nil }
                return state.waiter
            }
            waiter?.resume()
        }
    }

    /// Marks the attempt expired for `reason`; its task is cancelled.
    func expire(_ reason: String) {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            guard !state.finished, state.reason == nil else { return nil }
            state.reason = reason
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume()
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
        let (timer, waiter) = state.withLock { state -> (ScheduledAction?, CheckedContinuation<Void, Never>?) in
            state.finished = true
            defer {
                state.timer = nil
                state.waiter = nil
            }
            return (state.timer, state.waiter)
        }
        timer?.cancel()
        waiter?.resume()
    }
}
