import LLMFallback
import NIOCore
import Synchronization

/// Runs a request's tasks on the event loop of its connection, as a task executor.
///
/// `llm-fallback serve` installs SwiftNIO's event loops as Swift Concurrency's global executor, so that the server,
/// the chain and the upstream client share two threads instead of handing work back and forth with a second pool.
/// NIO runs those global jobs *as* the loop's serial executor, though, and every call into a nonisolated async
/// function then has to switch back to the generic executor: a job of its own, enqueued and run on the same loop.
/// That is dozens of jobs per request. With this executor as the request's task executor preference, nonisolated
/// code runs where the preference says, on the same loop, without switching: the whole request is a handful of
/// jobs, and the chain's child tasks and the upstream client's resumptions stay on the connection's loop.
final class EventLoopTaskExecutor: TaskExecutor {
    let eventLoop: any EventLoop

    init(eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        eventLoop.execute {
            job.runSynchronously(on: self.asUnownedTaskExecutor())
        }
    }
}

/// One ``EventLoopTaskExecutor`` per event loop, made on first use.
final class EventLoopTaskExecutors: Sendable {
    private let executors = Mutex<[ObjectIdentifier: EventLoopTaskExecutor]>([:])

    /// The executor of `eventLoop`.
    func executor(for eventLoop: any EventLoop) -> EventLoopTaskExecutor {
        let id = ObjectIdentifier(eventLoop)
        return executors.locked { executors in
            if let executor = executors[id] { return executor }
            let executor = EventLoopTaskExecutor(eventLoop: eventLoop)
            executors[id] = executor
            return executor
        }
    }
}
