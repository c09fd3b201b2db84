import Foundation
import NIOCore
import LLMFallbackTesting
import Synchronization
import Testing

@testable import LLMFallback

/// Collects values from `@Sendable` callbacks.
final class Recorder<Value: Sendable>: Sendable {
    private struct State {
        var values: [Value] = []
        var nextID = 0
        var waiters: [(id: Int, count: Int, continuation: CheckedContinuation<Void, Never>)] = []
        var cancelledBeforeRegistering: Set<Int> = []
    }
    private let state = Mutex(State())

    func append(_ value: Value) {
        let ready = state.locked { state -> [CheckedContinuation<Void, Never>] in
            state.values.append(value)
            let count = state.values.count
            let ready = state.waiters.filter { $0.count <= count }.map(\.continuation)
            state.waiters.removeAll { $0.count <= count }
            return ready
        }
        for continuation in ready { continuation.resume() }
    }

    var all: [Value] { state.locked { $0.values } }

    /// Waits until `count` values arrived: at most `timeout` of real time (then the test fails with
    /// ``TestWaitTimedOut`` instead of hanging), and it ends when the task is cancelled.
    func wait(for count: Int, timeout: Duration = .seconds(30)) async throws {
        try await withDeadline(timeout, "\(count) recorded values (have \(self.all.count))") {
            await self.untilCount(count)
        }
    }

    private func untilCount(_ count: Int) async {
        let id = state.locked { state -> Int in
            state.nextID += 1
            return state.nextID
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let ready = state.locked { state -> Bool in
                    if state.cancelledBeforeRegistering.remove(id) != nil || state.values.count >= count { return true }
                    state.waiters.append((id, count, continuation))
                    return false
                }
                if ready { continuation.resume() }
            }
        } onCancel: {
            let waiter = state.locked { state -> CheckedContinuation<Void, Never>? in
                if let index = state.waiters.firstIndex(where: { $0.id == id }) { return state.waiters.remove(at: index).continuation }
                state.cancelledBeforeRegistering.insert(id)
                return nil
            }
            waiter?.resume()
        }
    }
}

/// A test's wait that did not end in time.
struct TestWaitTimedOut: Error, CustomStringConvertible {
    var what: String
    var timeout: Duration
    var description: String { "waited \(timeout) for \(what)" }
}

/// Runs `operation` (which must end when cancelled), failing with ``TestWaitTimedOut`` after `timeout` of real
/// time: no wait in the tests can hang the run.
func withDeadline(_ timeout: Duration, _ what: @autoclosure @escaping @Sendable () -> String, _ operation: @escaping @Sendable () async -> Void) async throws {
    try await withThrowingTaskGroup(of: Bool.self) { group in
        group.addTask {
            await operation()
            return true
        }
        group.addTask {
            try? await Task.sleep(for: timeout)
            return false
        }
        let finished = try await group.next() ?? false
        group.cancelAll()
        try Task.checkCancellation()
        if !finished { throw TestWaitTimedOut(what: what(), timeout: timeout) }
    }
}

/// Polls `condition` (yielding between checks) until it holds, for at most `timeout` of real time.
func eventually(_ what: String, timeout: Duration = .seconds(30), _ condition: @escaping @Sendable () -> Bool) async throws {
    let deadline = ContinuousClock.now + timeout
    while !condition() {
        if ContinuousClock.now >= deadline { throw TestWaitTimedOut(what: what, timeout: timeout) }
        try Task.checkCancellation()
        await Task.yield()
    }
}

/// How many times longer a real-time bound on a test's duration may be when the run is slowed down on purpose:
/// `LLM_FALLBACK_TEST_TIME_SCALE`, a whole number from 1 to 100 (`scripts/sanitize.sh` sets 5: ThreadSanitizer
/// makes this code 5-15 times slower), 1 when unset or anything else. Only bounds on elapsed time use it, and only
/// those a sanitized run was seen to miss; never an assertion on an outcome.
enum TestTimeScale {
    static let factor: Int = {
        guard let text = ProcessInfo.processInfo.environment["LLM_FALLBACK_TEST_TIME_SCALE"],
            let value = Int(text), (1...100).contains(value)
        else { return 1 }
        return value
    }()

    /// `bound`, times `factor`.
    static func scaled(_ bound: Duration) -> Duration { bound * factor }
}

func withServer(_ body: (MockLLMServer) async throws -> Void) async throws {
    let server = try await MockLLMServer.start()
    do {
        try await body(server)
    } catch {
        try? await server.shutdown()
        throw error
    }
    try await server.shutdown()
}

extension MockLLMServer {
    func openAI(_ model: String, maxRetries: Int = 0, timeout: Duration = .seconds(30), key: String = "sk-test-key") -> Provider {
        var provider = Provider("openai", model: model, apiKey: key, baseURL: openAIBaseURL, timeout: timeout, maxRetries: maxRetries)
        provider.name = model
        return provider
    }
}

func config(
    threshold: Int = 5,
    recovery: Duration = .seconds(60),
    requestTimeout: Duration? = nil,
    policy: FailurePolicy = .default
) -> FallbackChain.Configuration {
    FallbackChain.Configuration(
        circuitBreaker: .init(failureThreshold: threshold, recoveryTimeout: recovery),
        requestTimeout: requestTimeout,
        retry: .immediate,
        failurePolicy: policy,
        randomSeed: 1
    )
}

@Suite struct FallbackChainTests {
    @Test func singleProviderAnswersAndSendsTheRealShape() async throws {
        try await withServer { server in
            server.script("gpt-4o", .text("Paris is the capital."))
            let chain = FallbackChain([server.openAI("gpt-4o")], configuration: config())
            let response = try await chain.chat("What is the capital of France?", system: "Be brief.")
            #expect(response.content == "Paris is the capital.")
            #expect(response.provider == "openai")
            #expect(response.model == "gpt-4o")
            #expect(response.attempts == 1)
            #expect(response.latency > .zero)
            #expect(response.usage != nil)
            let sent = try #require(server.requests(for: "gpt-4o").first)
            #expect(sent.path == "/v1/chat/completions")
            #expect(sent.header("authorization") == "Bearer sk-test-key")
            let json = try JSONValue(parsing: sent.bodyText)
            #expect(json["messages"] == [["role": "system", "content": "Be brief."], ["role": "user", "content": "What is the capital of France?"]])
        }
    }

    @Test func failsOverOnServerErrorAndReportsIt() async throws {
        try await withServer { server in
            server.script("primary", .status(500))
            server.script("backup", .text("from backup"))
            let failovers = Recorder<String>()
            let chain = FallbackChain(
                [server.openAI("primary"), server.openAI("backup")],
                configuration: config(),
                onFailover: { from, to, error in failovers.append("\(from) -> \(to): \(error.kind)") }
            )
            let response = try await chain.chat("hi")
            #expect(response.content == "from backup")
            #expect(response.providerName == "backup")
            #expect(response.attempts == 2)
            #expect(response.trace.map(\.outcome) == [.failure(.serverError), .success])
            #expect(response.trace.first?.status == 500)
            try await failovers.wait(for: 1)
            #expect(failovers.all == ["primary -> backup: server error"])
        }
    }

    @Test func retriesTransientFailuresUpToMaxRetries() async throws {
        try await withServer { server in
            server.script("primary", [.status(503), .status(500), .text("third time lucky")])
            let chain = FallbackChain([server.openAI("primary", maxRetries: 2), server.openAI("backup")], configuration: config())
            let response = try await chain.chat("hi")
            #expect(response.content == "third time lucky")
            #expect(response.attempts == 3)
            #expect(server.requests(for: "primary").count == 3)
            #expect(server.requests(for: "backup").isEmpty)
        }
    }

    @Test func retryBudgetThenFailover() async throws {
        try await withServer { server in
            server.script("primary", .status(503))
            let chain = FallbackChain([server.openAI("primary", maxRetries: 2), server.openAI("backup")], configuration: config())
            let response = try await chain.chat("hi")
            #expect(response.providerName == "backup")
            #expect(server.requests(for: "primary").count == 3)
            #expect(response.trace.map(\.number) == [1, 2, 3, 1])
        }
    }

    @Test func backoffWaitsOnTheClock() async throws {
        try await withServer { server in
            server.script("primary", [.status(500), .text("ok")])
            let clock = ManualClock()
            var configuration = config()
            configuration.retry = RetryPolicy(baseDelay: .seconds(1), jitter: false)
            let chain = FallbackChain([server.openAI("primary", maxRetries: 1)], configuration: configuration, clock: clock)
            async let response = chain.chat("hi")
            try await server.waitForRequests(1, model: "primary")
            // The attempt's deadline timer plus the backoff sleep.
            try await eventually("the backoff sleep") { clock.nextDeadline == clock.now.advanced(by: .seconds(1)) }
            #expect(server.requests(for: "primary").count == 1)
            clock.advance(by: .seconds(1))
            let value1 = try await response.content
            #expect(value1 == "ok")
            #expect(server.requests(for: "primary").count == 2)
        }
    }

    @Test func longRetryAfterFailsOverAndIsHonouredByLaterRequests() async throws {
        try await withServer { server in
            server.script("primary", [.status(429, headers: ["retry-after": "30"]), .text("primary again")])
            server.script("backup", .text("backup"))
            let clock = ManualClock()
            let chain = FallbackChain([server.openAI("primary", maxRetries: 3), server.openAI("backup")], configuration: config(), clock: clock)
            let first = try await chain.chat("hi")
            #expect(first.providerName == "backup")
            #expect(first.trace.first?.outcome == .failure(.rateLimited))
            #expect(server.requests(for: "primary").count == 1)

            clock.advance(by: .seconds(29))
            let second = try await chain.chat("hi")
            #expect(second.providerName == "backup")
            #expect(server.requests(for: "primary").count == 1)  // not tried before its Retry-After

            clock.advance(by: .seconds(1))
            let third = try await chain.chat("hi")
            #expect(third.providerName == "primary")
        }
    }

    @Test func shortRetryAfterIsWaitedOnTheSameProvider() async throws {
        try await withServer { server in
            server.script("primary", [.status(429, headers: ["retry-after-ms": "2000"]), .text("after the wait")])
            let clock = ManualClock()
            let chain = FallbackChain([server.openAI("primary", maxRetries: 1), server.openAI("backup")], configuration: config(), clock: clock)
            async let response = chain.chat("hi")
            try await server.waitForRequests(1, model: "primary")
            try await eventually("the Retry-After sleep") { clock.nextDeadline == clock.now.advanced(by: .seconds(2)) }
            clock.advance(by: .seconds(2))
            let answer = try await response
            #expect(answer.content == "after the wait")
            #expect(server.requests(for: "backup").isEmpty)
        }
    }

    @Test func retryAfterLongerThanTheDeadlineFailsOverAtOnce() async throws {
        try await withServer { server in
            server.script("primary", .status(429, headers: ["retry-after": "5"]))
            server.script("backup", .text("backup"))
            let chain = FallbackChain(
                [server.openAI("primary", maxRetries: 3), server.openAI("backup")],
                configuration: config(requestTimeout: .seconds(3)),
                clock: ManualClock()
            )
            let response = try await chain.chat("hi")
            #expect(response.providerName == "backup")
            #expect(server.requests(for: "primary").count == 1)
        }
    }

    @Test func authenticationFailureSuspendsTheProvider() async throws {
        try await withServer { server in
            server.script("primary", .status(401, message: "Incorrect API key provided: sk-test-key"))
            server.script("backup", .text("backup"))
            let clock = ManualClock()
            let chain = FallbackChain(
                [server.openAI("primary", maxRetries: 3), server.openAI("backup")],
                configuration: config(recovery: .seconds(60)),
                clock: clock
            )
            let first = try await chain.chat("hi")
            #expect(first.providerName == "backup")
            #expect(server.requests(for: "primary").count == 1)  // never retried
            _ = try await chain.chat("hi")
            #expect(server.requests(for: "primary").count == 1)  // skipped while suspended
            let report = chain.healthReport()
            #expect(report[0].state == .open)
            #expect(report[0].reopensIn == .seconds(60))
            #expect(report[0].lastError?.contains("sk-test-key") == false)
            clock.advance(by: .seconds(60))
            _ = try await chain.chat("hi")
            #expect(server.requests(for: "primary").count == 2)
        }
    }

    @Test func contextLengthFailsOverWithoutRetry() async throws {
        try await withServer { server in
            server.script("small", .status(400, message: "This model's maximum context length is 8192 tokens", code: "context_length_exceeded"))
            server.script("large", .text("large"))
            let chain = FallbackChain([server.openAI("small", maxRetries: 3), server.openAI("large")], configuration: config())
            let response = try await chain.chat("a very long prompt")
            #expect(response.providerName == "large")
            #expect(server.requests(for: "small").count == 1)
            #expect(chain.healthReport()[0].consecutiveFailures == 0)  // a client error says nothing about health
        }
    }

    @Test func contentFilterStopsByDefault() async throws {
        try await withServer { server in
            server.script("primary", .status(400, message: "flagged by the content filter", code: "content_filter"))
            let chain = FallbackChain([server.openAI("primary"), server.openAI("backup")], configuration: config())
            await #expect {
                try await chain.chat("hi")
            } throws: { error in
                guard let error = error as? ProviderError else { return false }
                return error.kind == .contentFiltered && error.message.contains("content filter") && error.provider == "primary"
            }
            #expect(server.requests(for: "backup").isEmpty)
        }
    }

    @Test func clientErrorsFailOverWhenAsked() async throws {
        try await withServer { server in
            server.script("primary", .status(400, message: "bad request"))
            server.script("backup", .text("backup"))
            let chain = FallbackChain([server.openAI("primary"), server.openAI("backup")], configuration: config(policy: .failoverOnClientErrors))
            let value2 = try await chain.chat("hi").providerName
            #expect(value2 == "backup")
        }
    }

    @Test func aHungProviderCostsOneTimeout() async throws {
        try await withServer { server in
            server.script("primary", .hang)
            server.script("backup", .text("backup"))
            let clock = ManualClock()
            let chain = FallbackChain(
                [server.openAI("primary", maxRetries: 3, timeout: .seconds(100)), server.openAI("backup")],
                configuration: config(),
                clock: clock
            )
            async let response = chain.chat("hi")
            try await server.waitForRequests(1, model: "primary")
            try await clock.waitForSleepers(1)
            clock.advance(by: .seconds(100))
            let answer = try await response
            #expect(answer.providerName == "backup")
            #expect(answer.trace.first?.outcome == .failure(.timeout))
            #expect(server.requests(for: "primary").count == 1)
            try await server.waitForAbandonedRequests(1)  // the hung request was cancelled, its connection closed
        }
    }

    @Test func overallDeadlineBoundsEverything() async throws {
        try await withServer { server in
            server.script("primary", .hang)
            server.script("backup", .hang)
            let clock = ManualClock()
            let chain = FallbackChain(
                [server.openAI("primary", timeout: .seconds(300)), server.openAI("backup", timeout: .seconds(300))],
                configuration: config(requestTimeout: .seconds(100)),
                clock: clock
            )
            let response = Task { try await chain.chat("hi") }
            try await server.waitForRequests(1, model: "primary")
            try await clock.waitForSleepers(1)
            #expect(clock.nextDeadline == clock.now.advanced(by: .seconds(100)))  // the attempt got only the time left
            clock.advance(by: .seconds(100))
            await #expect {
                try await response.value
            } throws: { error in
                guard let error = error as? AllProvidersFailed else { return false }
                return error.deadlineExceeded && error.failures.map(\.kind) == [.timeout]
            }
            #expect(server.requests(for: "backup").isEmpty)
        }
    }

    @Test func cancellationStopsAtOnceWithoutPenalty() async throws {
        try await withServer { server in
            server.script("primary", .hang)
            server.script("backup", .text("backup"))
            let chain = FallbackChain([server.openAI("primary"), server.openAI("backup")], configuration: config(threshold: 1), clock: ManualClock())
            let task = Task { try await chain.chat("hi") }
            try await server.waitForRequests(1, model: "primary")
            task.cancel()
            await #expect(throws: CancellationError.self) { try await task.value }
            try await server.waitForAbandonedRequests(1)
            #expect(server.requests(for: "backup").isEmpty)
            #expect(chain.healthReport()[0].state == .closed)
            #expect(chain.healthReport()[0].consecutiveFailures == 0)
        }
    }

    @Test func breakerOpensProbesOnceAndRecovers() async throws {
        try await withServer { server in
            server.script("primary", .status(500))
            server.script("backup", .text("backup"))
            let clock = ManualClock()
            let chain = FallbackChain(
                [server.openAI("primary", timeout: .seconds(300)), server.openAI("backup")],
                configuration: config(threshold: 2, recovery: .seconds(60)),
                clock: clock
            )
            _ = try await chain.chat("1")
            _ = try await chain.chat("2")
            #expect(chain.healthReport()[0].state == .open)
            _ = try await chain.chat("3")
            #expect(server.requests(for: "primary").count == 2)  // skipped while open

            // Half-open: many concurrent requests, exactly one probe reaches the server.
            clock.advance(by: .seconds(60))
            server.script("primary", .hang)
            let probe = Task { try await chain.chat("probe") }
            try await server.waitForRequests(3, model: "primary")
            try await withThrowingTaskGroup(of: ChatResponse.self) { group in
                for index in 0..<20 { group.addTask { try await chain.chat("concurrent \(index)") } }
                for try await response in group { #expect(response.providerName == "backup") }
            }
            #expect(server.requests(for: "primary").count == 3)

            // The probe times out: the breaker re-opens for twice the period (each failed probe doubles it).
            try await clock.waitForSleepers(1)
            clock.advance(by: .seconds(300))
            let value3 = try await probe.value.providerName
            #expect(value3 == "backup")
            #expect(chain.healthReport()[0].state == .open)
            #expect(chain.healthReport()[0].reopensIn == .seconds(120))

            // Recovery: the next probe succeeds and closes the breaker.
            server.script("primary", .text("primary is back"))
            clock.advance(by: .seconds(60))
            #expect(try await chain.chat("still open").providerName == "backup")
            clock.advance(by: .seconds(60))
            let value4 = try await chain.chat("4").providerName
            #expect(value4 == "primary")
            #expect(chain.healthReport()[0].state == .closed)
        }
    }

    @Test func whenEveryBreakerIsOpenTheSoonestIsTried() async throws {
        try await withServer { server in
            server.script("a", .status(500))
            server.script("b", .status(500))
            let clock = ManualClock()
            let chain = FallbackChain([server.openAI("a"), server.openAI("b")], configuration: config(threshold: 1, recovery: .seconds(60)), clock: clock)
            _ = try? await chain.chat("open a")  // a fails, opens at 0; b fails, opens at 0
            clock.advance(by: .seconds(10))
            server.script("a", .status(500))
            _ = try? await chain.chat("nothing admitted: probes the soonest")
            // Both reopen at 60; a is first in order and was the soonest.
            #expect(server.requests(for: "a").count == 2)
            #expect(server.requests(for: "b").count == 1)
            // a re-opened at 70 now; b reopens at 60, so b is the soonest.
            server.script("b", .text("b answers"))
            let response = try await chain.chat("probe soonest")
            #expect(response.providerName == "b")
        }
    }

    @Test func twoEntriesOfOneKindHaveSeparateHealth() async throws {
        try await withServer { server in
            server.script("gpt-4o", .status(500))
            server.script("gpt-4o-mini", .text("mini"))
            let chain = FallbackChain([server.openAI("gpt-4o"), server.openAI("gpt-4o-mini")], configuration: config(threshold: 1))
            _ = try await chain.chat("hi")
            let report = chain.healthReport()
            #expect(report[0].state == .open)
            #expect(report[1].state == .closed)
            #expect(report[1].successes == 1)
        }
    }

    @Test func allProvidersFailedReadsWell() async throws {
        try await withServer { server in
            server.script("a", .status(429, headers: ["retry-after": "2"]))
            server.script("b", .status(503))
            let chain = FallbackChain([server.openAI("a"), server.openAI("b")], configuration: config())
            do {
                _ = try await chain.chat("hi")
                Issue.record("expected a failure")
            } catch let error as AllProvidersFailed {
                #expect(error.failures.map(\.kind) == [.rateLimited, .overloaded])
                let text = "\(error)"
                #expect(text.contains("a: rate limited (429), retry after 2s"))
                #expect(text.contains("b: overloaded (503)"))
                #expect(!text.contains("sk-test-key"))
            }
        }
    }

    @Test func misconfiguredProviderFailsOverWithAClearError() async throws {
        try await withServer { server in
            server.script("backup", .text("backup"))
            let chain = FallbackChain([Provider("nonesuch", model: "x", apiKey: "k"), server.openAI("backup")], configuration: config())
            let response = try await chain.chat("hi")
            #expect(response.providerName == "backup")
            #expect(response.trace.first?.outcome == .failure(.misconfigured))
        }
    }

    @Test func keysNeverAppearInErrors() async throws {
        try await withServer { server in
            server.script("a", .status(401, message: "Incorrect API key provided: sk-test-key. Check it."))
            let chain = FallbackChain([server.openAI("a")], configuration: config())
            do {
                _ = try await chain.chat("hi")
            } catch {
                #expect(!"\(error)".contains("sk-test-key"))
                #expect("\(error)".contains("<redacted>"))
            }
        }
    }

    @Test func requestOptionsRestrictAndDisableFailover() async throws {
        try await withServer { server in
            server.script("a", .status(500))
            server.script("b", .text("b"))
            let chain = FallbackChain([server.openAI("a"), server.openAI("b")], configuration: config())
            let onlyB = try await chain.chat(ChatRequest(messages: [.user("hi")]), options: .init(providers: ["b"]))
            #expect(onlyB.providerName == "b")
            #expect(server.requests(for: "a").isEmpty)
            await #expect(throws: AllProvidersFailed.self) {
                try await chain.chat(ChatRequest(messages: [.user("hi")]), options: .init(allowFailover: false))
            }
        }
    }

    @Test func thousandsOfConcurrentChatsWithRandomFaults() async throws {
        try await withServer { server in
            var generator = SeededGenerator(seed: 7)
            for model in ["a", "b", "c"] {
                let script: [MockBehavior] = (0..<400).map { _ in
                    switch Int.random(in: 0..<6, using: &generator) {
                    case 0: return .status(500)
                    case 1: return .status(429)
                    case 2: return .reset
                    default: return .text("ok from \(model)")
                    }
                }
                server.script(model, script + [.text("ok")])
            }
            let chain = FallbackChain(
                [server.openAI("a", maxRetries: 1), server.openAI("b", maxRetries: 1), server.openAI("c", maxRetries: 1)],
                configuration: config(threshold: 5, recovery: .milliseconds(50), requestTimeout: .seconds(20))
            )
            let started = ContinuousClock.now
            let results = try await withThrowingTaskGroup(of: Bool.self) { group in
                for index in 0..<2000 {
                    group.addTask {
                        do {
                            _ = try await chain.chat("request \(index)")
                            return true
                        } catch is AllProvidersFailed {
                            return false
                        }
                    }
                }
                var answers = 0
                for try await answered in group where answered { answers += 1 }
                return answers
            }
            #expect(ContinuousClock.now - started < TestTimeScale.scaled(.seconds(60)))
            // How many are answered depends on the machine's load and on the breakers: with faults this frequent,
            // all three are sometimes open at once, and then requests fail fast instead of piling on (by design).
            #expect(results > 0)
            let report = chain.healthReport()
            let attempts = report.reduce(0) { $0 + $1.attempts }
            // Every request the server saw was an attempt. An attempt can fail before reaching it (on a loaded
            // machine, 2,000 connections at once queue past the 20 s deadline; a kept-alive connection the server
            // had just closed after a reset is never resent): only timeouts and connection errors may be missing.
            let unseen = report.reduce(0) { $0 + ($1.failuresByClass["timeout"] ?? 0) + ($1.failuresByClass["connection_error"] ?? 0) }
            #expect(attempts >= server.requests.count)
            #expect(attempts - server.requests.count <= unseen)
            #expect(report.reduce(0) { $0 + $1.successes } == results)
        }
    }

    @Test(.timeLimit(.minutes(1)))
    func aRefusedConnectionFailsOverAtOnce() async throws {
        try await withServer { server in
            server.script("backup", .text("backup"))
            var down = Provider("openai", model: "down", apiKey: "k", baseURL: "http://127.0.0.1:1/v1", timeout: .seconds(300), maxRetries: 1)
            down.name = "down"
            // A manual clock: only the transport's own behaviour can end the attempt, and it must do so at once.
            let chain = FallbackChain([down, server.openAI("backup")], configuration: config(), clock: ManualClock())
            let response = try await chain.chat("hi")
            #expect(response.providerName == "backup")
            #expect(response.trace.prefix(2).map(\.outcome) == [.failure(.connection), .failure(.connection)])
        }
    }

    @Test func sequentialCallsReuseOneConnection() async throws {
        try await withServer { server in
            server.script("m", .text("ok"))
            let chain = FallbackChain([server.openAI("m")], configuration: config())
            for _ in 0..<20 { _ = try await chain.chat("hi") }
            #expect(server.requests.count == 20)
            #expect(server.connectionsAccepted == 1)
        }
    }

    @Test func streamTotalLimit() async throws {
        try await withServer { server in
            server.script("slow", .chunkDelay(.seconds(60), .text("a b c d")))
            let clock = ManualClock()
            var configuration = config()
            configuration.streamTimeouts = StreamTimeouts(total: .seconds(3))
            let chain = FallbackChain([server.openAI("slow")], configuration: configuration, clock: clock)
            let task = Task { try await chain.stream("hi").collect() }
            try await server.waitForRequests(1, model: "slow")
            try await clock.waitForSleepers(1)
            clock.advance(by: .seconds(3))
            await #expect {
                try await task.value
            } throws: { error in
                "\(error)".contains("not finished within 3s")
            }
        }
    }

    @Test func roundRobinRotatesTheFirstChoice() async throws {
        try await withServer { server in
            let chain = FallbackChain(
                [server.openAI("a"), server.openAI("b"), server.openAI("c")],
                configuration: { var c = config(); c.strategy = .roundRobin; return c }()
            )
            var answered: [String] = []
            for _ in 0..<6 { answered.append(try await chain.chat("hi").providerName) }
            #expect(answered == ["a", "b", "c", "a", "b", "c"])
            let routed = try await chain.chat("hi")
            #expect(routed.route == ["a", "b", "c"])
        }
    }

    @Test("a token count is not a request: it asks in the chain's order and leaves the round-robin turn alone")
    func countTokensLeavesTheRotationAlone() async throws {
        try await withServer { server in
            func anthropic(_ model: String) -> Provider {
                var provider = Provider("anthropic", model: model, apiKey: "sk-ant-test", baseURL: server.baseURL, timeout: .seconds(10), maxRetries: 0)
                provider.name = model
                return provider
            }
            for model in ["a", "b"] { server.script(model, .text("hello")) }
            let chain = FallbackChain(
                [anthropic("a"), anthropic("b")], configuration: { var c = config(); c.strategy = .roundRobin; return c }())
            #expect(try await chain.chat("hi").providerName == "a")
            server.script("a", .raw(status: 200, body: #"{"input_tokens":7}"#))
            server.script("b", .raw(status: 200, body: #"{"input_tokens":7}"#))
            let count = try await chain.countTokens(ChatRequest(prompt: "hi"))
            #expect(count == TokenCount(inputTokens: 7, isEstimate: false, providerName: "a", model: "a"))
            for model in ["a", "b"] { server.script(model, .text("hello")) }
            // The rotation goes on where the chats left it.
            #expect(try await chain.chat("hi").providerName == "b")
            #expect(try await chain.chat("hi").providerName == "a")
        }
    }

    @Test func weightedSharesFollowTheWeights() async throws {
        try await withServer { server in
            var heavy = server.openAI("heavy")
            heavy.weight = 3
            let chain = FallbackChain(
                [heavy, server.openAI("light")],
                configuration: { var c = config(); c.strategy = .weighted; return c }()
            )
            var heavyCount = 0
            for _ in 0..<400 where try await chain.chat("hi").providerName == "heavy" { heavyCount += 1 }
            #expect((260...340).contains(heavyCount))  // 300 expected; seeded, so exact and repeatable
        }
    }

    @Test func latencyRoutingPrefersTheFastest() async throws {
        try await withServer { server in
            // Latencies on an injected clock: on the real one a loaded machine once made "fast" take 570 ms.
            let transport = VirtualLatencyTransport(clock: ManualClock(), latencies: ["slow": .milliseconds(150), "fast": .milliseconds(5)])
            let chain = FallbackChain(
                [server.openAI("slow"), server.openAI("fast")],
                configuration: { var c = config(); c.strategy = .latency(tolerance: 0.2); return c }(),
                transport: transport,
                clock: transport.clock
            )
            // Both unmeasured: each is tried so it gets measured, then the faster takes everything.
            var answered: [String] = []
            for _ in 0..<10 { answered.append(try await chain.chat("hi").providerName) }
            #expect(answered == ["slow", "fast"] + Array(repeating: "fast", count: 8))
            let report = chain.healthReport()
            #expect(report[1].latency! < report[0].latency!)
        }
    }
}

@Suite struct HedgingTests {
    @Test func aHedgeWinsAgainstASlowFirstProviderAndCancelsIt() async throws {
        try await withServer { server in
            server.script("slow", .hang)
            server.script("backup", .text("hedged answer"))
            let clock = ManualClock()
            var configuration = config()
            configuration.hedging = .after(.seconds(1))
            let chain = FallbackChain([server.openAI("slow"), server.openAI("backup")], configuration: configuration, clock: clock)
            let task = Task { try await chain.chat("hi") }
            try await server.waitForRequests(1, model: "slow")
            try await clock.waitForSleepers(2)  // the slow attempt's deadline and the hedge timer
            clock.advance(by: .seconds(1))
            let response = try await task.value
            #expect(response.providerName == "backup")
            #expect(response.content == "hedged answer")
            try await server.waitForAbandonedRequests(1)  // the loser's request was cancelled
            let slow = chain.healthReport()[0]
            #expect(slow.failures == 0)  // a hedge is not a failure of the slow provider
            #expect(slow.state == .closed)
        }
    }

    @Test func noHedgeWhenTheFirstAnswersInTime() async throws {
        try await withServer { server in
            server.script("fast", .text("fast"))
            var configuration = config()
            configuration.hedging = .after(.seconds(5))
            let chain = FallbackChain([server.openAI("fast"), server.openAI("backup")], configuration: configuration, clock: ManualClock())
            for _ in 0..<5 { _ = try await chain.chat("hi") }
            #expect(server.requests(for: "backup").isEmpty)
        }
    }

    @Test func theHedgeCapHolds() async throws {
        try await withServer { server in
            server.script("slow", .hang)
            server.script("backup", .hang)
            let clock = ManualClock()
            var configuration = config()
            configuration.hedging = .after(.seconds(1), maxConcurrentHedges: 1)
            let chain = FallbackChain([server.openAI("slow"), server.openAI("backup")], configuration: configuration, clock: clock)
            let first = Task { try await chain.chat("one") }
            let second = Task { try await chain.chat("two") }
            try await server.waitForRequests(2, model: "slow")
            try await clock.waitForSleepers(4)
            clock.advance(by: .seconds(1))
            try await server.waitForRequests(1, model: "backup")
            #expect(chain.hedges.inFlight == 1)
            // The second request's hedge timer fired too, but found the cap reached: still one backup request.
            try await clock.waitForSleepers(3)  // two slow deadlines + the hedge's own attempt deadline
            #expect(server.requests(for: "backup").count == 1)
            first.cancel()
            second.cancel()
            _ = try? await first.value
            _ = try? await second.value
            #expect(chain.hedges.inFlight == 0)
        }
    }
}

/// A transport that makes each request take a scripted time on a manual clock, so latency routing is tested
/// exactly, whatever the load on the machine.
final class VirtualLatencyTransport: HTTPTransport {
    let base = AsyncHTTPClientTransport()
    let clock: ManualClock
    let latencies: Mutex<[String: Duration]>

    init(clock: ManualClock, latencies: [String: Duration]) {
        self.clock = clock
        self.latencies = Mutex(latencies)
    }

    func set(_ model: String, _ latency: Duration) { latencies.locked { $0[model] = latency } }

    func send(_ request: HTTPRequestParts, timeout: Duration) async throws -> TransportResponse {
        let body = try JSONValue(parsing: String(buffer: request.body ?? ByteBuffer()))
        let model = body["model"]?.stringValue ?? ""
        let response = try await base.send(request, timeout: timeout)
        clock.advance(by: latencies.locked { $0[model] ?? .zero })
        return response
    }
}

@Suite struct LatencyRoutingTests {
    func latencyChain(_ server: MockLLMServer, _ transport: VirtualLatencyTransport, _ names: [String], tolerance: Double = 0.2) -> FallbackChain {
        var configuration = config()
        configuration.strategy = .latency(tolerance: tolerance)
        return FallbackChain(names.map { server.openAI($0) }, configuration: configuration, transport: transport, clock: transport.clock)
    }

    @Test func movesAwayWhenTheFastestSlowsDown() async throws {
        try await withServer { server in
            let transport = VirtualLatencyTransport(clock: ManualClock(), latencies: ["a": .milliseconds(50), "b": .milliseconds(200)])
            let chain = latencyChain(server, transport, ["a", "b"])
            var answered: [String] = []
            for _ in 0..<6 { answered.append(try await chain.chat("hi").providerName) }
            // Both unmeasured at first: each is tried once, then the faster takes everything.
            #expect(answered == ["a", "b", "a", "a", "a", "a"])
            // a slows down: its average rises past b's and b takes over.
            transport.set("a", .milliseconds(800))
            answered = []
            for _ in 0..<4 { answered.append(try await chain.chat("hi").providerName) }
            #expect(answered == ["a", "b", "b", "b"])
            let report = chain.healthReport()
            #expect(report[0].latency! > report[1].latency!)
        }
    }

    @Test func aRecoveredProviderWinsAgainOnceItsOldSamplesAgeOut() async throws {
        try await withServer { server in
            let transport = VirtualLatencyTransport(clock: ManualClock(), latencies: ["a": .milliseconds(900), "b": .milliseconds(200)])
            let chain = latencyChain(server, transport, ["a", "b"])
            for _ in 0..<4 { _ = try await chain.chat("hi") }
            let skipped = try await chain.chat("hi")
            #expect(skipped.providerName == "b")
            transport.set("a", .milliseconds(20))
            transport.clock.advance(by: chain.configuration.latencyMaxAge + .seconds(1))
            // Every sample is stale: both count as unmeasured and are tried again; a now measures fast and wins.
            var answered: [String] = []
            for _ in 0..<4 { answered.append(try await chain.chat("hi").providerName) }
            #expect(answered == ["a", "b", "a", "a"])
        }
    }

    @Test func providersWithinTheToleranceBandShareTheLoad() async throws {
        try await withServer { server in
            let transport = VirtualLatencyTransport(clock: ManualClock(), latencies: ["a": .milliseconds(100), "b": .milliseconds(110), "c": .milliseconds(400)])
            let chain = latencyChain(server, transport, ["a", "b", "c"], tolerance: 0.2)
            var counts: [String: Int] = [:]
            for _ in 0..<60 { counts[try await chain.chat("hi").providerName, default: 0] += 1 }
            #expect(counts["a", default: 0] >= 15)
            #expect(counts["b", default: 0] >= 15)
            #expect(counts["c", default: 0] == 1)  // measured once, then outside the band
            let shares = chain.healthReport().map(\.share)
            #expect(abs(shares.reduce(0, +) - 1) < 0.001)
        }
    }

    @Test func longAnswersAreNormalised() {
        let long = FallbackChain.normalisedLatency(.milliseconds(1000), completionTokens: 1024)
        #expect(long == .milliseconds(250))
        #expect(FallbackChain.normalisedLatency(.milliseconds(100), completionTokens: 50) == .milliseconds(100))
    }
}

@Suite struct StreamHedgingTests {
    @Test func aStreamHedgeWinsOnFirstTokenAndCancelsTheSlowStream() async throws {
        try await withServer { server in
            server.script("slow", .hang)
            server.script("backup", .text("hedged stream answer"))
            let clock = ManualClock()
            var configuration = config()
            configuration.hedging = .after(.seconds(1))
            let chain = FallbackChain([server.openAI("slow"), server.openAI("backup")], configuration: configuration, clock: clock)
            let task = Task { try await chain.stream("hi").collect() }
            try await server.waitForRequests(1, model: "slow")
            try await clock.waitForSleepers(2)  // the slow stream's first-token watchdog and the hedge timer
            clock.advance(by: .seconds(1))
            let response = try await task.value
            #expect(response.content == "hedged stream answer")
            #expect(response.model == "backup")
            try await server.waitForAbandonedRequests(1)
            #expect(chain.healthReport()[0].failures == 0)
            #expect(chain.hedges.inFlight == 0)
        }
    }

    @Test func aFastStreamIsNotHedged() async throws {
        try await withServer { server in
            server.script("fast", .text("one two three"))
            var configuration = config()
            configuration.hedging = .after(.seconds(5))
            let chain = FallbackChain([server.openAI("fast"), server.openAI("backup")], configuration: configuration, clock: ManualClock())
            for _ in 0..<3 {
                let response = try await chain.stream("hi").collect()
                #expect(response.content == "one two three")
            }
            #expect(server.requests(for: "backup").isEmpty)
        }
    }

    @Test func aHedgedStreamStillFailsOverAndReportsFailure() async throws {
        try await withServer { server in
            server.script("a", .status(500))
            server.script("b", .status(500))
            var configuration = config()
            configuration.hedging = .after(.seconds(5))
            let chain = FallbackChain([server.openAI("a"), server.openAI("b")], configuration: configuration, clock: ManualClock())
            await #expect(throws: AllProvidersFailed.self) {
                for try await _ in chain.stream("hi") {}
            }
        }
    }
}
