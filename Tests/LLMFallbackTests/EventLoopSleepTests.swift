import Dispatch
import LLMFallbackTesting
import Synchronization
import Testing

@testable import LLMFallback

/// The real clock's sleep (deadlines, backoff, watchdogs) runs on event loop timers: it must wait as long as asked,
/// end at once when cancelled, and carry the chain's per-attempt timeout on the real clock.
@Suite("Event loop sleep")
struct EventLoopSleepTests {
    @Test("waits at least the time asked")
    func waits() async throws {
        let started = ContinuousClock.now
        try await EventLoopSleep.sleep(for: .milliseconds(30))
        #expect(ContinuousClock.now - started >= .milliseconds(30))
    }

    @Test("a cancelled sleep ends at once with CancellationError")
    func cancelled() async throws {
        let started = ContinuousClock.now
        let sleeper = Task { try await EventLoopSleep.sleep(for: .seconds(3600)) }
        sleeper.cancel()
        let result = await sleeper.result
        #expect(throws: CancellationError.self) { try result.get() }
        // Far below the hour asked for; generous, as other tests may flood the executor meanwhile.
        #expect(ContinuousClock.now - started < .seconds(120))
    }

    @Test("a sleep in a task cancelled later ends when it is cancelled")
    func cancelledWhileSleeping() async throws {
        let sleeping = AsyncStream<Void>.makeStream()
        let sleeper = Task {
            sleeping.continuation.yield()
            try await EventLoopSleep.sleep(for: .seconds(3600))
        }
        var iterator = sleeping.stream.makeAsyncIterator()
        await iterator.next()
        sleeper.cancel()
        let result = await sleeper.result
        #expect(throws: CancellationError.self) { try result.get() }
    }

    @Test("zero and negative durations return at once")
    func zero() async throws {
        try await EventLoopSleep.sleep(for: .zero)
        try await EventLoopSleep.sleep(for: .milliseconds(-5))
    }

    @Test("many sleeps cancelled together all end")
    func manyCancelled() async throws {
        let outcomes = await withTaskGroup(of: Bool.self) { group in
            for _ in 0..<500 {
                group.addTask {
                    do {
                        try await EventLoopSleep.sleep(for: .seconds(3600))
                        return false
                    } catch {
                        return error is CancellationError
                    }
                }
            }
            group.cancelAll()
            var cancelled = 0
            for await outcome in group where outcome { cancelled += 1 }
            return cancelled
        }
        #expect(outcomes == 500)
    }

    @Test("the chain's attempt timeout fires on the real clock and the backup answers")
    func chainTimeoutOnRealClock() async throws {
        try await withServer { server in
            server.script("hung", [.hang])
            server.script("backup", [.text("from backup")])
            let chain = FallbackChain(
                [server.openAI("hung", timeout: .milliseconds(200)), server.openAI("backup")],
                configuration: config()
            )
            let started = ContinuousClock.now
            let response = try await chain.chat("hello")
            #expect(response.content == "from backup")
            #expect(response.trace.first?.outcome == .failure(.timeout))
            #expect(ContinuousClock.now - started < .seconds(20))
        }
    }

    /// On the real clock with one of the package's transports, a chat attempt sends in the request's own task (the
    /// transport bounds the wait for the head) and only a body still arriving runs under the attempt's expiry: a body
    /// that stops halfway, and a head that never comes, both still end the attempt at its timeout.
    @Test(
        "an answer whose body stops halfway, or whose head never comes, times out on the real clock on both transports",
        .timeLimit(.minutes(1)),
        arguments: ["AsyncHTTPClient", "NIO"])
    func chatTimeoutCoversTheBodyOnRealClock(transportName: String) async throws {
        try await withServer { server in
            server.script("stalls", [.stallAfter(chunks: 2, text: "one two three four five six")])
            server.script("hung", [.hang])
            server.script("backup", [.text("from backup"), .text("from backup")])
            let transport: any HTTPTransport = transportName == "NIO" ? NIOHTTPClientTransport() : AsyncHTTPClientTransport()
            for model in ["stalls", "hung"] {
                let chain = FallbackChain(
                    [server.openAI(model, timeout: .milliseconds(300)), server.openAI("backup")],
                    configuration: config(), transport: transport
                )
                #expect(chain.transportBoundsResponseHead)
                // On NIO the transport bounds the body itself; on AsyncHTTPClient the attempt's expiry does.
                #expect((chain.bodyBoundingTransport != nil) == (transportName == "NIO"))
                let started = ContinuousClock.now
                let response = try await chain.chat("hello")
                #expect(response.content == "from backup", "\(model)")
                #expect(response.trace.first?.outcome == .failure(.timeout), "\(model)")
                #expect(ContinuousClock.now - started < TestTimeScale.scaled(.seconds(20)), "\(model)")
            }
            try await server.waitForAbandonedRequests(2)
        }
    }

    /// The same path with a body over `maxResponseBytes`: on NIOHTTPClientTransport a small response arrives in
    /// memory and is decoded without a child task, and the limit holds there as on a body still arriving.
    @Test(
        "an answer larger than maxResponseBytes is an invalid response on the real clock on both transports",
        .timeLimit(.minutes(1)),
        arguments: ["AsyncHTTPClient", "NIO"])
    func chatOverTheResponseLimitOnRealClock(transportName: String) async throws {
        try await withServer { server in
            server.script("large", [.text(String(repeating: "word ", count: 2_000))])
            server.script("backup", [.text("from backup")])
            let transport: any HTTPTransport = transportName == "NIO" ? NIOHTTPClientTransport() : AsyncHTTPClientTransport()
            var configuration = config()
            configuration.maxResponseBytes = 1_024
            let chain = FallbackChain([server.openAI("large"), server.openAI("backup")], configuration: configuration, transport: transport)
            #expect(chain.transportBoundsResponseHead)
            let response = try await chain.chat("hello")
            #expect(response.content == "from backup")
            #expect(response.trace.first?.outcome == .failure(.invalidResponse))
        }
    }

    /// An answer that announces a body over `maxResponseBytes` is refused on its head, without waiting for a body
    /// that may never come (here: one byte, then nothing for far longer than the test may take).
    @Test(
        "an answer announcing a body over maxResponseBytes fails over at once, on both transports and the old path",
        .timeLimit(.minutes(1)),
        arguments: ["AsyncHTTPClient", "NIO", "custom"])
    func chatAnnouncingTooLargeABodyFailsAtOnce(transportName: String) async throws {
        try await withServer { server in
            server.script("huge", [.chunkDelay(.seconds(600), .raw(
                status: 200, headers: ["content-type": "application/json", "content-length": "50000000"], parts: ["{", "}"]))])
            server.script("backup", [.text("from backup")])
            let transport: any HTTPTransport = switch transportName {
            case "NIO": NIOHTTPClientTransport()
            case "custom": ForwardingTransport(base: AsyncHTTPClientTransport())
            default: AsyncHTTPClientTransport()
            }
            var configuration = config()
            configuration.maxResponseBytes = 1 << 20
            let chain = FallbackChain(
                [server.openAI("huge", timeout: .seconds(300)), server.openAI("backup")],
                configuration: configuration, transport: transport)
            let started = ContinuousClock.now
            let response = try await chain.chat("hello")
            #expect(response.content == "from backup")
            #expect(response.trace.first?.outcome == .failure(.invalidResponse))
            #expect(ContinuousClock.now - started < TestTimeScale.scaled(.seconds(20)))
        }
    }

    /// On the body read that starts at once (AsyncHTTPClient, real clock): an error answer whose body is over the
    /// 1 MiB read to classify it keeps its status (and fails over as what it is), and a body over
    /// `maxResponseBytes` sent without a `Content-Length` is still refused once it is over.
    @Test("an error's status is kept past its body limit, and a chunked body is bounded, on the immediate body read", .timeLimit(.minutes(1)))
    func bodyLimitsOnTheImmediateRead() async throws {
        try await withServer { server in
            let big = String(repeating: "x", count: 1_200_000)
            server.script("unavailable", [.raw(status: 500, headers: ["content-type": "text/plain"], body: big)])
            server.script("chunked", [.raw(status: 200, headers: ["content-type": "application/json"], parts: ["{\"a\": \"", big, "\"}"])])
            server.script("backup", [.text("from backup"), .text("from backup")])
            let transport = AsyncHTTPClientTransport()
            var configuration = config()
            configuration.maxResponseBytes = 1 << 20
            for (model, kind) in [("unavailable", ProviderError.Kind.serverError), ("chunked", .invalidResponse)] {
                let chain = FallbackChain([server.openAI(model), server.openAI("backup")], configuration: configuration, transport: transport)
                #expect(chain.transportBoundsResponseHead)
                let response = try await chain.chat("hello")
                #expect(response.content == "from backup", "\(model)")
                #expect(response.trace.first?.outcome == .failure(kind), "\(model)")
            }
        }
    }

    /// The body read runs in a task of its own: a caller's cancellation reaches it, ends the chat at once and
    /// releases the request.
    @Test(
        "cancelling a chat while its body arrives cancels the body read, on both transports",
        .timeLimit(.minutes(1)),
        arguments: ["AsyncHTTPClient", "NIO"])
    func cancellingTheBodyRead(transportName: String) async throws {
        try await withServer { server in
            server.script("slow", [.stallAfter(chunks: 1, text: "one two three")])
            let transport: any HTTPTransport = transportName == "NIO" ? NIOHTTPClientTransport() : AsyncHTTPClientTransport()
            let chain = FallbackChain([server.openAI("slow", timeout: .seconds(300))], configuration: config(), transport: transport)
            let started = ContinuousClock.now
            let chat = Task { try await chain.chat("hello") }
            try await server.waitForRequests(1)
            chat.cancel()
            await #expect(throws: CancellationError.self) { try await chat.value }
            #expect(ContinuousClock.now - started < TestTimeScale.scaled(.seconds(20)))
            try await server.waitForAbandonedRequests(1)
        }
    }

    @Test("a stream that stalls is ended by the watchdog on the real clock, and a silent one fails over", .timeLimit(.minutes(1)))
    func streamWatchdogOnRealClock() async throws {
        try await withServer { server in
            server.script("stalls", [.stallAfter(chunks: 2)])
            server.script("silent", [.hang])
            server.script("backup", [.text("from backup")])
            var configuration = config()
            // Generous for a loaded machine, except where the test waits for them to fire.
            configuration.streamTimeouts = StreamTimeouts(firstToken: .seconds(10), idle: .seconds(1))
            let stalling = FallbackChain([server.openAI("stalls"), server.openAI("backup")], configuration: configuration)
            var delivered = 0
            await #expect {
                for try await chunk in stalling.stream("hi") where chunk.hasContent { delivered += 1 }
            } throws: { error in
                guard let interrupted = error as? StreamInterrupted else { return false }
                return interrupted.underlying.kind == .timeout && interrupted.deliveredChunks == delivered
            }
            #expect(delivered >= 1)
            try await server.waitForAbandonedRequests(1)

            var silentProvider = server.openAI("silent")
            silentProvider.streamTimeouts = StreamTimeouts(firstToken: .seconds(1))
            let silent = FallbackChain([silentProvider, server.openAI("backup")], configuration: configuration)
            let answer = try await silent.stream("hi").collect()
            #expect(answer.content == "from backup")
        }
    }

    @Test("a stream's work runs on the task executor its options name")
    func streamRunsOnTheGivenExecutor() async throws {
        try await withServer { server in
            server.script("m", [.text("a b c")])
            let executor = CountingExecutor()
            let chain = FallbackChain([server.openAI("m")], configuration: config())
            let answer = try await chain.stream(ChatRequest(prompt: "hi"), options: .init(taskExecutor: executor)).collect()
            #expect(answer.content == "a b c")
            #expect(executor.jobs.locked { $0 } > 0)
        }
    }
}

/// A task executor that runs jobs on a global queue and counts them.
final class CountingExecutor: TaskExecutor {
    let jobs = Mutex(0)

    func enqueue(_ job: consuming ExecutorJob) {
        jobs.locked { $0 += 1 }
        let job = UnownedJob(job)
        DispatchQueue.global().async { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}

/// A transport the chain does not know: it keeps the chain's own expiry and child task.
struct ForwardingTransport: HTTPTransport {
    let base: any HTTPTransport
    func send(_ request: HTTPRequestParts, timeout: Duration) async throws -> TransportResponse {
        try await base.send(request, timeout: timeout)
    }
}
