import LLMFallback
import Synchronization

/// A clock that moves only when a test says so, for exact and fast tests of time-based logic (circuit breakers,
/// backoff, deadlines, latency windows).
///
/// ```swift
/// let clock = ManualClock()
/// let chain = FallbackChain([...], configuration: config, clock: clock)
/// async let answer = chain.chat("Hi")
/// try await clock.waitForSleepers(1)  // the chain is waiting on a deadline or a backoff
/// clock.advance(by: .seconds(30))     // ... which now expires
/// ```
public final class ManualClock: Clock, Sendable {
    /// An instant on a ``ManualClock``: the time since the clock was created.
    public struct Instant: InstantProtocol, Sendable, CustomStringConvertible {
        /// Time since the clock's origin.
        public var offset: Duration

        /// Creates an instant at `offset` from the origin.
        public init(offset: Duration) { self.offset = offset }

        public func advanced(by duration: Duration) -> Instant { Instant(offset: offset + duration) }
        public func duration(to other: Instant) -> Duration { other.offset - offset }
        public static func < (lhs: Instant, rhs: Instant) -> Bool { lhs.offset < rhs.offset }
        public var description: String { "+\(offset)" }
    }

    private struct Sleeper {
        var deadline: Instant
        var continuation: CheckedContinuation<Void, any Error>
    }

    private struct State {
        var now = Instant(offset: .zero)
        var nextID = 0
        var sleepers: [Int: Sleeper] = [:]
        var cancelledBeforeRegistering: Set<Int> = []
        var nextWaiterID = 0
        var sleeperWaiters: [(id: Int, count: Int, continuation: CheckedContinuation<Void, Never>)] = []
        var waitersCancelledBeforeRegistering: Set<Int> = []
    }

    private let state = Mutex(State())

    /// Creates a clock at offset zero.
    public init() {}

    public var now: Instant { state.locked { $0.now } }

    public var minimumResolution: Duration { .zero }

    /// How many tasks are sleeping on this clock.
    public var sleeperCount: Int { state.locked { $0.sleepers.count } }

    /// The earliest deadline any sleeper waits for.
    public var nextDeadline: Instant? { state.locked { $0.sleepers.values.map(\.deadline).min() } }

    public func sleep(until deadline: Instant, tolerance: Duration? = nil) async throws {
        try Task.checkCancellation()
        let id: Int? = state.locked { state in
            if deadline <= state.now { return nil }
            state.nextID += 1
            return state.nextID
        }
        guard let id else { return }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let (resumeNow, cancelled, waiters) = state.locked { state -> (Bool, Bool, [CheckedContinuation<Void, Never>]) in
                    if state.cancelledBeforeRegistering.remove(id) != nil { return (false, true, []) }
                    if deadline <= state.now { return (true, false, []) }
                    state.sleepers[id] = Sleeper(deadline: deadline, continuation: continuation)
                    return (false, false, Self.takeReadyWaiters(&state))
                }
                if cancelled {
                    continuation.resume(throwing: CancellationError())
                } else if resumeNow {
                    continuation.resume()
                }
                for waiter in waiters { waiter.resume() }
            }
        } onCancel: {
            let continuation = state.locked { state -> CheckedContinuation<Void, any Error>? in
                if let sleeper = state.sleepers.removeValue(forKey: id) { return sleeper.continuation }
                state.cancelledBeforeRegistering.insert(id)
                return nil
            }
            continuation?.resume(throwing: CancellationError())
        }
    }

    /// Moves the clock forward, waking every sleeper whose deadline has come.
    public func advance(by duration: Duration) {
        let due = state.locked { state -> [CheckedContinuation<Void, any Error>] in
            state.now = state.now.advanced(by: duration)
            let now = state.now
            let ready = state.sleepers.filter { $0.value.deadline <= now }
            for key in ready.keys { state.sleepers.removeValue(forKey: key) }
            return ready.values.sorted { $0.deadline < $1.deadline }.map(\.continuation)
        }
        for continuation in due { continuation.resume() }
    }

    /// Moves the clock to the earliest sleeper's deadline and wakes it (does nothing without sleepers).
    public func advanceToNextDeadline() {
        guard let next = nextDeadline else { return }
        advance(by: now.duration(to: next))
    }

    /// A wait for sleepers that did not see them in time: the code under test never went to sleep on the clock.
    public struct SleepersTimeout: Error, Sendable, CustomStringConvertible {
        /// The number of sleepers waited for.
        public var expected: Int
        /// The number sleeping when the wait gave up.
        public var sleeping: Int
        /// How long the wait lasted (on the real clock).
        public var timeout: Duration

        public var description: String {
            "waited \(timeout) for \(expected) sleepers on the ManualClock, but only \(sleeping) went to sleep"
        }
    }

    /// Suspends until at least `count` tasks are sleeping on this clock (no polling).
    ///
    /// The wait is bounded, so a test whose code never sleeps fails instead of hanging the run: after `timeout`
    /// of real time it throws ``SleepersTimeout``; cancelling the waiting task (a test's time limit) ends it with
    /// `CancellationError`.
    ///
    /// - Parameters:
    ///   - count: How many sleepers to wait for.
    ///   - timeout: The longest real time to wait.
    /// - Throws: ``SleepersTimeout`` or `CancellationError`.
    public func waitForSleepers(_ count: Int = 1, timeout: Duration = .seconds(30)) async throws {
        if sleeperCount >= count { return }
        try await withThrowingTaskGroup(of: Bool.self) { group in
            group.addTask {
                await self.untilSleepers(count)
                return true
            }
            group.addTask {
                try? await Task.sleep(for: timeout)
                return false
            }
            let arrived = try await group.next() ?? false
            group.cancelAll()
            try Task.checkCancellation()
            if !arrived {
                throw SleepersTimeout(expected: count, sleeping: sleeperCount, timeout: timeout)
            }
        }
    }

    /// Waits for `count` sleepers, or until the task is cancelled.
    private func untilSleepers(_ count: Int) async {
        let id = state.locked { state -> Int in
            state.nextWaiterID += 1
            return state.nextWaiterID
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let ready = state.locked { state -> Bool in
                    if state.waitersCancelledBeforeRegistering.remove(id) != nil { return true }
                    if state.sleepers.count >= count { return true }
                    state.sleeperWaiters.append((id, count, continuation))
                    return false
                }
                if ready { continuation.resume() }
            }
        } onCancel: {
            let waiter = state.locked { state -> CheckedContinuation<Void, Never>? in
                if let index = state.sleeperWaiters.firstIndex(where: { $0.id == id }) {
                    return state.sleeperWaiters.remove(at: index).continuation
                }
                state.waitersCancelledBeforeRegistering.insert(id)
                return nil
            }
            waiter?.resume()
        }
    }

    private static func takeReadyWaiters(_ state: inout State) -> [CheckedContinuation<Void, Never>] {
        let count = state.sleepers.count
        var ready: [CheckedContinuation<Void, Never>] = []
        state.sleeperWaiters.removeAll { waiter in
            if waiter.count <= count {
                ready.append(waiter.continuation)
                return true
            }
            return false
        }
        return ready
    }
}
