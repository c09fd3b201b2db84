import LLMFallback
import NIOCore
import Synchronization

/// The mutable state of one ``MockLLMServer``, shared by the server object and its connection handlers.
///
/// Every mutation happens under one lock; continuations of waiting tasks are resumed after the lock is released.
final class ServerState: Sendable {
    /// Identifies a recorded request when its connection later reports it abandoned.
    struct Ticket: Sendable {
        /// The state's generation when the request was recorded; ``reset()`` starts a new one.
        fileprivate let generation: Int
    }

    /// What a waiting task waits for.
    enum WaitCondition: Sendable {
        case requests(Int, model: String?)
        case abandonedRequests(Int)
    }

    private struct Script {
        var behaviours: [MockBehavior]
        var next = 0

        /// The next behaviour; the last one repeats.
        mutating func take() -> MockBehavior {
            defer { self.next += 1 }
            return self.behaviours[min(self.next, self.behaviours.count - 1)]
        }
    }

    private enum Waiter {
        /// Registered, its continuation not yet stored.
        case pending
        /// Cancelled before its continuation was stored.
        case cancelled
        case waiting(WaitCondition, CheckedContinuation<Void, Never>)
    }

    private struct State {
        var scripts: [String: Script] = [:]
        var requests: [RecordedRequest] = []
        var generation = 0
        var abandonedRequests = 0
        var connectionsAccepted = 0
        var nextConnectionID = 1
        var nextResponseID = 1
        var openChannels: [Int: any Channel] = [:]
        var isShutDown = false
        var waiters: [Int: Waiter] = [:]
        var nextWaiterID = 0

        func isMet(_ condition: WaitCondition) -> Bool {
            switch condition {
            case .requests(let count, nil):
                self.requests.count >= count
            case .requests(let count, let model?):
                self.requests.lazy.filter { $0.model == model }.count >= count
            case .abandonedRequests(let count):
                self.abandonedRequests >= count
            }
        }

        /// Removes the waiters whose condition now holds (all of them once shut down) and returns their
        /// continuations, to be resumed after the lock is released.
        mutating func takeSatisfiedWaiters() -> [CheckedContinuation<Void, Never>] {
            var satisfied: [CheckedContinuation<Void, Never>] = []
            for (id, waiter) in self.waiters {
                if case .waiting(let condition, let continuation) = waiter, self.isShutDown || self.isMet(condition) {
                    self.waiters[id] = nil
                    satisfied.append(continuation)
                }
            }
            return satisfied
        }
    }

    private let state = Mutex(State())

    // MARK: Connections

    /// Counts a newly accepted connection and keeps it for ``shutDown()``.
    ///
    /// - Returns: The connection's identifier, or `nil` when the server is shutting down and the connection must
    ///   be closed.
    func connectionAccepted(_ channel: any Channel) -> Int? {
        self.state.locked { state in
            guard !state.isShutDown else { return nil }
            let id = state.nextConnectionID
            state.nextConnectionID += 1
            state.connectionsAccepted += 1
            state.openChannels[id] = channel
            return id
        }
    }

    /// Forgets a closed connection.
    func connectionClosed(_ id: Int) {
        self.state.locked { state in
            state.openChannels[id] = nil
        }
    }

    // MARK: Requests

    /// Records `request` and picks what to do with it.
    ///
    /// - Parameter request: The request; its model selects the script, unless its format is
    ///   ``MockWireFormat/unknown``, which is answered `404` without consuming any script.
    /// - Returns: The ticket for reporting the request abandoned, a number unique to its response, and the
    ///   behaviour to perform (`nil` for an unknown route).
    func record(_ request: RecordedRequest) -> (ticket: Ticket, responseID: Int, behaviour: MockBehavior?) {
        let (result, resumable) = self.state.locked { state in
            state.requests.append(request)
            let responseID = state.nextResponseID
            state.nextResponseID += 1
            var behaviour: MockBehavior?
            if request.format != .unknown {
                behaviour = state.scripts[request.model]?.take() ?? .text("Hello from \(request.model)")
            }
            let result = (ticket: Ticket(generation: state.generation), responseID: responseID, behaviour: behaviour)
            return (result, state.takeSatisfiedWaiters())
        }
        for continuation in resumable {
            continuation.resume()
        }
        return result
    }

    /// Counts a request whose client closed the connection before the response was complete.
    ///
    /// Requests recorded before the last ``reset()`` and connections closed by ``shutDown()`` are not counted.
    func requestAbandoned(_ ticket: Ticket) {
        let resumable = self.state.locked { state -> [CheckedContinuation<Void, Never>] in
            guard !state.isShutDown, ticket.generation == state.generation else { return [] }
            state.abandonedRequests += 1
            return state.takeSatisfiedWaiters()
        }
        for continuation in resumable {
            continuation.resume()
        }
    }

    // MARK: Scripts and records

    func script(_ model: String, _ behaviours: [MockBehavior]) {
        self.state.locked { state in
            state.scripts[model] = behaviours.isEmpty ? nil : Script(behaviours: behaviours)
        }
    }

    func reset() {
        self.state.locked { state in
            state.scripts = [:]
            state.requests = []
            state.abandonedRequests = 0
            state.connectionsAccepted = 0
            state.generation += 1
        }
    }

    var requests: [RecordedRequest] {
        self.state.locked { $0.requests }
    }

    var connectionsAccepted: Int {
        self.state.locked { $0.connectionsAccepted }
    }

    var abandonedRequests: Int {
        self.state.locked { $0.abandonedRequests }
    }

    /// Whether `condition` holds now.
    func isMet(_ condition: WaitCondition) -> Bool {
        self.state.locked { $0.isMet(condition) }
    }

    // MARK: Waiting

    /// Suspends until `condition` holds, the server shuts down, or the task is cancelled.
    func wait(until condition: WaitCondition) async {
        let id: Int? = self.state.locked { state in
            guard !state.isShutDown, !state.isMet(condition) else { return nil }
            let id = state.nextWaiterID
            state.nextWaiterID += 1
            state.waiters[id] = .pending
            return id
        }
        guard let id else { return }
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let resumeNow = self.state.locked { state in
                    guard case .pending = state.waiters[id], !state.isShutDown, !state.isMet(condition) else {
                        state.waiters[id] = nil
                        return true
                    }
                    state.waiters[id] = .waiting(condition, continuation)
                    return false
                }
                if resumeNow {
                    continuation.resume()
                }
            }
        } onCancel: {
            let continuation = self.state.locked { state -> CheckedContinuation<Void, Never>? in
                switch state.waiters[id] {
                case .waiting(_, let continuation):
                    state.waiters[id] = nil
                    return continuation
                case .pending:
                    state.waiters[id] = .cancelled
                    return nil
                case .cancelled, nil:
                    return nil
                }
            }
            continuation?.resume()
        }
    }

    // MARK: Shutdown

    /// Marks the server shut down, releases every waiting task, and returns the connections still open.
    ///
    /// - Returns: `nil` when the server was already shut down.
    func shutDown() -> [any Channel]? {
        let result = self.state.locked {
            state -> (channels: [any Channel], resumable: [CheckedContinuation<Void, Never>])? in
            guard !state.isShutDown else { return nil }
            state.isShutDown = true
            let channels = Array(state.openChannels.values)
            state.openChannels = [:]
            return (channels, state.takeSatisfiedWaiters())
        }
        for continuation in result?.resumable ?? [] {
            continuation.resume()
        }
        return result?.channels
    }
}
