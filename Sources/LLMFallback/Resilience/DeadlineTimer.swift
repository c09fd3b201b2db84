import NIOCore
import NIOPosix
import Synchronization

/// Actions due at instants of the real clock, kept in a heap under one lock and run by one event loop timer armed
/// for the earliest of them.
///
/// Every attempt arms a deadline, and nearly every one is cancelled a few milliseconds later. An event loop timer
/// per attempt costs, from a thread that is not that loop's (Swift Concurrency's threads, where a library's
/// callers run), two of the loop's locks, an insertion in its heap, a write to its eventfd to wake it, and a
/// linear scan of its timers to cancel: measured at about a tenth of the chain's cost over a direct call. Here an
/// action is an entry in a heap and a table under one lock, and the loop's timer is armed again only when an action
/// comes due before the instant it is armed for. Attempts with one timeout arrive in the order they come due, so
/// the timer is armed about once per timeout, not once per attempt.
///
/// A cancelled action leaves the table at once (its closure is released outside the lock); its heap entry, two
/// integers, is dropped when it reaches the top (each schedule drops the cancelled entries there) or when the heap is
/// compacted (when it holds four times the pending actions). When the timer fires it runs, outside the lock and in
/// order, every action that is due, then arms itself for the earliest pending one; a timer left armed for an action
/// that was cancelled fires once for nothing. The process has one such timer per event loop of
/// `MultiThreadedEventLoopGroup.singleton`, and actions are spread over them in turn, so no single lock is shared
/// by every request.
final class DeadlineTimer: Sendable {
    private struct Entry {
        /// `NIODeadline.uptimeNanoseconds`.
        var deadline: UInt64
        var id: UInt64
    }

    /// A closure in a struct: a closure stored as a generic container's element is wrapped in a reabstraction thunk,
    /// one allocation per action.
    private struct Action {
        let run: @Sendable () -> Void
    }

    private struct State {
        /// A binary min-heap of deadlines; entries whose id has left `actions` were cancelled.
        var heap: [Entry] = []
        var actions: [UInt64: Action] = [:]
        var nextID: UInt64 = 0
        /// The instant the loop's timer is armed for, `nil` while none is armed. Every pending action is due at or
        /// after it.
        var armedAt: UInt64?
        var armed: NIOScheduledCallback?
        /// Counts armings; a firing of a timer that was since replaced does not disarm its successor.
        var generation: UInt64 = 0
    }

    private let state = Mutex(State())
    private let loop: any EventLoop

    init(loop: any EventLoop) {
        self.loop = loop
    }

    /// One timer per event loop of the singleton group.
    private static let timers: [DeadlineTimer] = MultiThreadedEventLoopGroup.singleton.makeIterator().map { DeadlineTimer(loop: $0) }
    private static let turns = Atomic<UInt>(0)

    /// The timer for the next action, in turn.
    static func next() -> DeadlineTimer {
        let turn = turns.wrappingAdd(1, ordering: .relaxed).oldValue
        return timers[Int(turn % UInt(timers.count))]
    }

    /// Runs `action` at `deadline` unless ``cancel(_:)`` is called first; returns the action's id, or `nil` when
    /// no timer could be armed (the event loops are shutting down) and the action will never run.
    func schedule(at deadline: NIODeadline, _ action: @escaping @Sendable () -> Void) -> UInt64? {
        let due = deadline.uptimeNanoseconds
        return state.locked { state -> UInt64? in
            let id = state.nextID
            state.nextID &+= 1
            Self.dropCancelledTop(&state)
            if state.heap.count >= 1024, state.heap.count > 4 * state.actions.count {
                Self.compact(&state)
            }
            if let armedAt = state.armedAt, armedAt <= due {
                state.actions[id] = Action(run: action)
                Self.push(&state.heap, Entry(deadline: due, id: id))
                return id
            }
            guard arm(&state, at: due) else { return nil }
            state.actions[id] = Action(run: action)
            Self.push(&state.heap, Entry(deadline: due, id: id))
            return id
        }
    }

    /// Cancels the action with `id`, if it has not run.
    func cancel(_ id: UInt64) {
        let action = state.locked { $0.actions.removeValue(forKey: id) }
        _ = action  // Released here, outside the lock.
    }

    /// Actions waiting to run (for tests).
    var pendingCount: Int { state.locked { $0.actions.count } }

    /// Arms the loop's timer for `deadline`, replacing the one armed, if any (which stays when arming fails).
    /// Called under the lock: the loop's own locks are taken inside ours and never the other way round (the
    /// handler's cancellation hook does nothing).
    private func arm(_ state: inout State, at deadline: UInt64) -> Bool {
        let generation = state.generation &+ 1
        let callback: NIOScheduledCallback
        do {
            callback = try loop.scheduleCallback(at: .uptimeNanoseconds(deadline), handler: Fire(timer: self, generation: generation))
        } catch {
            return false
        }
        state.armed?.cancel()
        state.armed = callback
        state.armedAt = deadline
        state.generation = generation
        return true
    }

    /// The loop's timer fired: runs every action due and arms the timer for the earliest one left.
    private func fire(generation: UInt64) {
        let due = state.locked { state -> [Action] in
            if generation == state.generation {
                state.armed = nil
                state.armedAt = nil
            }
            let now = NIODeadline.now().uptimeNanoseconds
            var due: [Action] = []
            while let top = state.heap.first, top.deadline <= now {
                Self.popTop(&state.heap)
                if let action = state.actions.removeValue(forKey: top.id) { due.append(action) }
            }
            Self.dropCancelledTop(&state)
            if state.armedAt == nil, let top = state.heap.first {
                // If the loops are shutting down the pending actions never run, as with a timer of their own.
                _ = arm(&state, at: top.deadline)
            }
            return due
        }
        for action in due { action.run() }
    }

    private struct Fire: NIOScheduledCallbackHandler, Sendable {
        let timer: DeadlineTimer
        let generation: UInt64
        func handleScheduledCallback(eventLoop: some EventLoop) { timer.fire(generation: generation) }
    }

    // MARK: - The heap

    private static func dropCancelledTop(_ state: inout State) {
        while let top = state.heap.first, state.actions[top.id] == nil { popTop(&state.heap) }
    }

    /// Keeps only the entries of pending actions: O(n), once per 3n schedules at most.
    private static func compact(_ state: inout State) {
        let actions = state.actions
        state.heap.removeAll { actions[$0.id] == nil }
        var index = state.heap.count / 2
        while index > 0 {
            index -= 1
            siftDown(&state.heap, from: index)
        }
    }

    private static func push(_ heap: inout [Entry], _ entry: Entry) {
        heap.append(entry)
        var child = heap.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard heap[child].deadline < heap[parent].deadline else { break }
            heap.swapAt(child, parent)
            child = parent
        }
    }

    private static func popTop(_ heap: inout [Entry]) {
        let last = heap.removeLast()
        guard !heap.isEmpty else { return }
        heap[0] = last
        siftDown(&heap, from: 0)
    }

    private static func siftDown(_ heap: inout [Entry], from start: Int) {
        var parent = start
        while true {
            let left = 2 * parent + 1
            guard left < heap.count else { return }
            let right = left + 1
            let child = right < heap.count && heap[right].deadline < heap[left].deadline ? right : left
            guard heap[child].deadline < heap[parent].deadline else { return }
            heap.swapAt(child, parent)
            parent = child
        }
    }
}
