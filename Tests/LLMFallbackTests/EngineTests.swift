import LLMFallback
import LLMFallbackTesting
import MetricsTestKit
import Synchronization
import Testing

@testable import LLMFallback

/// The engine under a broad outage (issue 13; review findings 3, 7, 8, 10, 12, 17, 22, 23): bounded probes, a
/// retry budget, a capped Retry-After window, recovery that adapts, one deadline and one hedge per request.
@Suite struct EngineTests {
    // MARK: Finding 3: when every provider is open, probes are bounded

    @Test func aSingleProviderChainWithAnOpenBreakerSendsOneProbeNotOnePerRequest() async throws {
        try await withServer { server in
            server.script("down", [.status(500), .hang])
            let clock = ManualClock()
            let chain = FallbackChain([server.openAI("down", timeout: .seconds(30))], configuration: config(threshold: 1), clock: clock)
            await #expect(throws: AllProvidersFailed.self) { _ = try await chain.chat("opens the breaker") }
            #expect(chain.healthReport()[0].state == .open)

            // The breaker is open and the chain has nothing else: one request probes (and hangs); the rest fail
            // fast, as every circuit is open, instead of each going upstream.
            let probe = Task { try await chain.chat("probe") }
            try await server.waitForRequests(2, model: "down")
            var fastFailures = 0
            for index in 0..<20 {
                do {
                    _ = try await chain.chat("request \(index)")
                } catch let failed as AllProvidersFailed {
                    #expect(failed.allCircuitsOpen, "\(failed)")
                    fastFailures += 1
                }
            }
            #expect(fastFailures == 20)
            #expect(server.requests(for: "down").count == 2)
            #expect(chain.health.forcedProbesInFlight == 1)
            probe.cancel()
            _ = try? await probe.value
            #expect(chain.health.forcedProbesInFlight == 0)
        }
    }

    @Test func aProviderThatFailsFastIsForceProbedOncePerOpenPeriodNotBackToBack() async throws {
        try await withServer { server in
            server.script("down", .status(500))
            let clock = ManualClock()
            var configuration = config(threshold: 1, recovery: .seconds(5))
            configuration.circuitBreaker.maxRecoveryTimeout = .seconds(60)
            let chain = FallbackChain([server.openAI("down")], configuration: configuration, clock: clock)
            for _ in 0..<20 {
                await #expect(throws: AllProvidersFailed.self) { _ = try await chain.chat("hi") }
            }
            // One request opened the breaker, one forced probe failed (the period doubles to 10 s); the other 18
            // failed fast without going upstream.
            #expect(server.requests(for: "down").count == 2)
            clock.advance(by: .seconds(10))
            for _ in 0..<5 {
                await #expect(throws: AllProvidersFailed.self) { _ = try await chain.chat("hi") }
            }
            #expect(server.requests(for: "down").count == 3, "one probe for the next period")
        }
    }

    @Test func concurrentRequestsDuringAFullOutageProbeAtMostHalfOpenMaxProbes() async throws {
        try await withServer { server in
            server.script("a", [.status(500), .hang])
            server.script("b", [.status(500), .hang])
            let clock = ManualClock()
            var configuration = config(threshold: 1)
            configuration.circuitBreaker.halfOpenMaxProbes = 2
            let chain = FallbackChain([server.openAI("a"), server.openAI("b")], configuration: configuration, clock: clock)
            await #expect(throws: AllProvidersFailed.self) { _ = try await chain.chat("opens both") }
            let probes = (0..<2).map { index in Task { try await chain.chat("probe \(index)") } }
            try await eventually("two probes upstream") { server.requests.count == 4 }
            try await withThrowingTaskGroup(of: Bool.self) { group in
                for index in 0..<30 {
                    group.addTask {
                        do {
                            _ = try await chain.chat("concurrent \(index)")
                            return false
                        } catch let failed as AllProvidersFailed {
                            return failed.allCircuitsOpen
                        }
                    }
                }
                for try await failedFast in group { #expect(failedFast) }
            }
            #expect(server.requests.count == 4, "1 + 1 to open the breakers, then at most 2 probes")
            for probe in probes { probe.cancel() }
            for probe in probes { _ = try? await probe.value }
        }
    }

    // MARK: With a shared store, forced probes take the fleet's lease (issue 16)

    @Test func withAStoreAForcedProbeWaitsForTheFleetsLeaseAndNoRequestWaitsForTheStore() async throws {
        try await withServer { server in
            server.script("down", .status(500))
            let clock = ManualClock()
            let store = LeaseScriptStore()
            var configuration = config(threshold: 1, recovery: .seconds(5))
            configuration.healthStore = store
            let chain = FallbackChain([server.openAI("down")], configuration: configuration, clock: clock)
            await #expect(throws: AllProvidersFailed.self) { _ = try await chain.chat("opens the breaker") }
            #expect(server.requests(for: "down").count == 1)

            // Every candidate is closed: without a store the engine would probe now. With one, the first request
            // asks for a forced lease (with the period) and fails at once, and so do the rest until an answer.
            for _ in 0..<5 {
                do {
                    _ = try await chain.chat("hi")
                    Issue.record("answered")
                } catch let failed as AllProvidersFailed {
                    #expect(failed.allCircuitsOpen, "\(failed)")
                }
            }
            #expect(server.requests(for: "down").count == 1)
            #expect(store.forcedRequests == [.seconds(5)], "one request for a forced lease, none per request")

            // Refused (another instance probes): still nothing, and not asked again before the retry time.
            store.answer(granted: false, retryIn: .seconds(2))
            await #expect(throws: AllProvidersFailed.self) { _ = try await chain.chat("hi") }
            #expect(store.forcedRequests.count == 1)
            clock.advance(by: .seconds(2))
            await #expect(throws: AllProvidersFailed.self) { _ = try await chain.chat("hi") }
            #expect(store.forcedRequests.count == 2)
            #expect(server.requests(for: "down").count == 1)

            // Granted: the next request is the one probe.
            store.answer(granted: true, retryIn: nil)
            await #expect(throws: AllProvidersFailed.self) { _ = try await chain.chat("the probe") }
            #expect(server.requests(for: "down").count == 2)
            await #expect(throws: AllProvidersFailed.self) { _ = try await chain.chat("hi") }
            #expect(server.requests(for: "down").count == 2, "a lease is one probe")
            #expect(chain.health.forcedProbesInFlight == 0)
        }
    }

    @Test func aGrantedLeaseNotUsedInTimeIsDropped() async throws {
        try await withServer { server in
            server.script("down", .status(500))
            let clock = ManualClock()
            let store = LeaseScriptStore()
            var configuration = config(threshold: 1, recovery: .seconds(5))
            configuration.healthStore = store
            // A lease lasts the attempt timeout and a second: 3 s here, within the 5 s open period.
            let chain = FallbackChain([server.openAI("down", timeout: .seconds(2))], configuration: configuration, clock: clock)
            await #expect(throws: AllProvidersFailed.self) { _ = try await chain.chat("opens the breaker") }
            await #expect(throws: AllProvidersFailed.self) { _ = try await chain.chat("asks for a lease") }
            store.answer(granted: true, retryIn: nil)
            // The store's lease has ended by now, and another instance may hold it.
            clock.advance(by: .seconds(3))
            await #expect(throws: AllProvidersFailed.self) { _ = try await chain.chat("too late for that lease") }
            #expect(server.requests(for: "down").count == 1)
            #expect(store.forcedRequests.count == 2, "asked again")
        }
    }

    // MARK: Retries ask admission, within a budget

    @Test func aRetryBudgetKeepsAnOutageFromMultiplyingTraffic() async throws {
        try await withServer { server in
            server.script("down", .status(500))
            var configuration = config()
            configuration.circuitBreaker = .disabled
            configuration.retry.budget = RetryBudget(ratio: 0, minimumRetries: 2, window: .seconds(10))
            let chain = FallbackChain([server.openAI("down", maxRetries: 3)], configuration: configuration, clock: ManualClock())
            for _ in 0..<5 {
                await #expect(throws: AllProvidersFailed.self) { _ = try await chain.chat("hi") }
            }
            // Five requests, two retries in the budget: 7 attempts (without a budget, 5 × 4 = 20).
            #expect(server.requests(for: "down").count == 7)
        }
    }

    @Test func theBudgetGrowsWithTrafficAndRefillsAsTheWindowMoves() {
        var window = RetryBudgetWindow(RetryBudget(ratio: 0.5, minimumRetries: 1, window: .seconds(10)))
        var granted: [Bool] = []
        granted.append(window.takeRetry(now: .zero))
        granted.append(window.takeRetry(now: .zero))
        for _ in 0..<4 { window.noteRequest(now: .seconds(1)) }
        // 1 + 0.5 × 4 = 3 retries in the window, one of them taken.
        for _ in 0..<3 { granted.append(window.takeRetry(now: .seconds(1))) }
        // Twelve seconds on, the old requests and retries have left the window.
        for _ in 0..<2 { granted.append(window.takeRetry(now: .seconds(12))) }
        #expect(granted == [true, false, true, true, false, true, false])
    }

    @Test func aRetryDecidedBeforeAnotherRequestOpenedTheBreakerDoesNotGo() async throws {
        try await withServer { server in
            server.script("primary", .status(500))
            server.script("backup", .text("backup"))
            let clock = ManualClock()
            var configuration = config(threshold: 2)
            configuration.retry = RetryPolicy(baseDelay: .seconds(1), jitter: false)
            let chain = FallbackChain([server.openAI("primary", maxRetries: 3), server.openAI("backup")], configuration: configuration, clock: clock)
            // Request 1 fails once and waits a second to retry; meanwhile request 2's failure opens the breaker.
            let first = Task { try await chain.chat("1") }
            try await server.waitForRequests(1, model: "primary")
            try await eventually("the backoff sleep") { clock.nextDeadline == clock.now.advanced(by: .seconds(1)) }
            let second = Task { try await chain.chat("2") }
            try await eventually("the breaker to open") { chain.healthReport()[0].state == .open }
            clock.advance(by: .seconds(1))
            #expect(try await first.value.providerName == "backup")
            #expect(try await second.value.providerName == "backup")
            #expect(server.requests(for: "primary").count == 2, "the retry asked admission and skipped the open provider")
        }
    }

    // MARK: Finding 7: a Retry-After window is capped, and probed when nothing else is open

    @Test func aDayLongRetryAfterSkipsTheProviderForAtMostTheCap() async throws {
        try await withServer { server in
            server.script("primary", [.status(429, headers: ["retry-after": "86400"]), .text("primary again")])
            server.script("backup", .text("backup"))
            let clock = ManualClock()
            let chain = FallbackChain([server.openAI("primary", maxRetries: 1), server.openAI("backup")], configuration: config(), clock: clock)
            #expect(try await chain.chat("1").providerName == "backup")
            let remaining = try #require(chain.healthReport()[0].retryAfterRemaining)
            #expect(remaining == RetryPolicy().maxRetryAfterSkip)
            #expect(remaining == .seconds(300))
            #expect(try await chain.chat("2").providerName == "backup")
            clock.advance(by: .seconds(301))
            #expect(try await chain.chat("3").providerName == "primary")
        }
    }

    @Test func whenEveryProviderIsInARetryAfterWindowTheSoonestIsProbed() async throws {
        try await withServer { server in
            server.script("only", [.status(429, headers: ["retry-after": "3600"]), .text("back")])
            let clock = ManualClock()
            let chain = FallbackChain([server.openAI("only")], configuration: config(), clock: clock)
            await #expect(throws: AllProvidersFailed.self) { _ = try await chain.chat("1") }
            // Without the probe, this chain would answer nothing for the window's whole length.
            let answer = try await chain.chat("2")
            #expect(answer.content == "back")
            #expect(server.requests(for: "only").count == 2)
        }
    }

    @Test func aRateLimitWithRetryAfterDoesNotOpenTheBreakerUnlessConfigured() async throws {
        for counts in [false, true] {
            try await withServer { server in
                server.script("limited", .status(429, headers: ["retry-after": "1"]))
                server.script("backup", .text("backup"))
                let clock = ManualClock()
                var configuration = config(threshold: 2)
                configuration.circuitBreaker.countsRateLimitsWithRetryAfter = counts
                let chain = FallbackChain([server.openAI("limited"), server.openAI("backup")], configuration: configuration, clock: clock)
                for _ in 0..<3 {
                    _ = try await chain.chat("hi")
                    clock.advance(by: .seconds(2))
                }
                #expect(chain.healthReport()[0].state == (counts ? .open : .closed))
            }
        }
    }

    @Test func aRetryAfterWaitIsJitteredSoClientsDoNotReturnInLockstep() {
        let policy = RetryPolicy()
        var random = SeededGenerator(seed: 7)
        let waits = (0..<50).map { _ in policy.delay(forRetryAfter: .seconds(2), using: &random) }
        #expect(waits.allSatisfy { $0 >= .seconds(2) && $0 <= .milliseconds(2_200) })
        #expect(Set(waits).count > 10)
        var unjittered = policy
        unjittered.jitter = false
        let exact = unjittered.delay(forRetryAfter: .seconds(2), using: &random)
        #expect(exact == .seconds(2))
    }

    // MARK: Recovery that adapts

    @Test func eachFailedProbeDoublesTheOpenPeriodUpToTheCeilingAndASuccessResetsIt() {
        let configuration = CircuitBreaker.Configuration(failureThreshold: 1, recoveryTimeout: .seconds(5), maxRecoveryTimeout: .seconds(30))
        var breaker = CircuitBreaker(configuration: configuration)
        var now = Duration.zero
        breaker.record(.failure, wasProbe: false, now: now)
        var periods: [Duration] = []
        for _ in 0..<5 {
            let opensAt = breaker.opensAt ?? .zero
            periods.append(opensAt - now)
            now = opensAt
            #expect(breaker.admit(now: now) == .probe)
            breaker.record(.failure, wasProbe: true, now: now)
        }
        #expect(periods == [.seconds(5), .seconds(10), .seconds(20), .seconds(30), .seconds(30)])
        now = breaker.opensAt!
        #expect(breaker.admit(now: now) == .probe)
        #expect(breaker.record(.success, wasProbe: true, now: now) == .closed)
        breaker.record(.failure, wasProbe: false, now: now)
        #expect(breaker.opensAt! - now == .seconds(5), "a successful probe resets the period")
    }

    @Test func theDefaultRecoveryIsSecondsNotAMinute() {
        #expect(CircuitBreaker.Configuration().recoveryTimeout == .seconds(5))
        #expect(CircuitBreaker.Configuration().maxRecoveryTimeout == .seconds(300))
        #expect(CircuitBreaker.Configuration(recoveryTimeout: .seconds(60)).recoveryPeriod(afterFailedProbes: 0) == .seconds(60))
        // Absurd settings stay total.
        let absurd = CircuitBreaker.Configuration(recoveryTimeout: .seconds(1), maxRecoveryTimeout: .seconds(Int64.max))
        #expect(absurd.recoveryPeriod(afterFailedProbes: .max) <= Bounds.longestDuration)
    }

    @Test func theFailureRateWindowIsBucketedAndForgetsOldCalls() {
        var window = FailureWindow(span: .seconds(10))
        for second in 0..<10 { window.record(failed: second % 2 == 0, now: .seconds(second)) }
        #expect(window.totals(now: .seconds(9)) == (10, 5))
        #expect(window.totals(now: .seconds(14)) == (5, 2), "seconds 5-9 remain")
        #expect(window.totals(now: .seconds(30)) == (0, 0))
    }

    // MARK: Finding 8: one deadline

    @Test func theRequestDeadlineBoundsAStreamAfterItsFirstToken() async throws {
        try await withServer { server in
            // A stream that drips for ten seconds of real time, each gap far below its idle limit.
            server.script("drip", .chunkDelay(.milliseconds(50), .text(String(repeating: "word ", count: 200))))
            let clock = ManualClock()
            let chain = FallbackChain(
                [server.openAI("drip", timeout: .seconds(30))],
                configuration: config(requestTimeout: .seconds(10)),
                clock: clock
            )
            let stream = chain.stream("hi")
            var iterator = stream.makeAsyncIterator()
            var delivered = 0
            while delivered < 2, let chunk = try await iterator.next() {
                if chunk.hasContent { delivered += 1 }
            }
            clock.advance(by: .seconds(6))
            while delivered < 4, let chunk = try await iterator.next() {
                if chunk.hasContent { delivered += 1 }
            }
            // Activity at 6 s keeps the idle limit (10 s) away until 16 s; the request's deadline is at 10 s.
            clock.advance(by: .seconds(5))
            let error = await #expect(throws: StreamInterrupted.self) {
                while let _ = try await iterator.next() {}
            }
            #expect(error?.underlying.kind == .timeout)
            #expect(error?.underlying.message.contains("requestTimeout") == true, "\(String(describing: error))")
        }
    }

    // MARK: Finding 10: one hedge

    @Test func aHedgeNeverCallsTheSameProviderTwiceAndReportsOnce() async throws {
        try await withServer { server in
            server.script("first", .hang)
            server.script("second", .hang)
            server.script("third", .text("third answers"))
            let clock = ManualClock()
            let metrics = TestMetrics()
            var configuration = config()
            configuration.hedging = .after(.seconds(1))
            configuration.metricsFactory = metrics
            let successes = Mutex(0)
            let chain = FallbackChain(
                [server.openAI("first", timeout: .seconds(5)), server.openAI("second", timeout: .seconds(60)), server.openAI("third")],
                configuration: configuration,
                clock: clock,
                onSuccess: { _ in successes.locked { $0 += 1 } }
            )
            let task = Task { try await chain.chat("hi") }
            try await server.waitForRequests(1, model: "first")
            try await clock.waitForSleepers(2)  // the first attempt's deadline and the hedge timer
            clock.advance(by: .seconds(1))
            try await server.waitForRequests(1, model: "second")
            // The first provider times out while the hedge still waits on the second: the first leg goes on to the
            // third, never to the second, which the hedge is already running.
            clock.advance(by: .seconds(4))
            let response = try await task.value
            #expect(response.providerName == "third")
            #expect(server.requests(for: "second").count == 1)
            #expect(server.requests(for: "third").count == 1)
            #expect(try metrics.expectCounter("llm_fallback_requests_total").totalValue == 1)
            try await eventually("onSuccess") { successes.locked { $0 } == 1 }
        }
    }

    @Test func aHedgedStreamReportsOnlyTheWinnerToOnSuccess() async throws {
        try await withServer { server in
            server.script("slow", .delayed(.milliseconds(300), .text("slow answer")))
            server.script("fast", .text("fast answer"))
            let successes = Recorder<String>()
            var configuration = config()
            configuration.hedging = .after(.milliseconds(20))
            let chain = FallbackChain(
                [server.openAI("slow"), server.openAI("fast")],
                configuration: configuration,
                onSuccess: { response in successes.append(response.providerName) }
            )
            let answer = try await chain.stream("hi").collect()
            #expect(answer.content == "fast answer")
            try await successes.wait(for: 1)
            try await Task.sleep(for: .milliseconds(500))  // the loser would have finished by now
            #expect(successes.all == ["fast"])
        }
    }

    // MARK: Finding 23: restart and continue go to the next provider

    @Test func aRestartGoesToTheNextProviderNotTheSameOne() async throws {
        try await withServer { server in
            server.script("primary", .cutStream(afterChunks: 2, text: "one two three four"))
            server.script("backup", .text("from the backup"))
            var configuration = config()
            configuration.midStreamPolicy = .restart
            let chain = FallbackChain([server.openAI("primary", maxRetries: 3), server.openAI("backup")], configuration: configuration)
            let answer = try await chain.stream("hi").collect()
            #expect(answer.content == "from the backup")
            #expect(server.requests(for: "primary").count == 1, "a connection error after content is not retried on the same provider")
        }
    }

    // MARK: Finding 12: exploration is bounded

    @Test func latencyRoutingSendsOnlyAFewConcurrentRequestsToAnUnmeasuredProvider() async throws {
        try await withServer { server in
            server.script("known", .text("known"))
            server.script("new", .hang)
            let clock = ManualClock()
            var configuration = config()
            configuration.strategy = .latency
            configuration.maxConcurrentExplorations = 2
            let chain = FallbackChain([server.openAI("known"), server.openAI("new", timeout: .seconds(30))], configuration: configuration, clock: clock)
            // "known" gets measured while "new" is asked to wait (restricted to one provider).
            _ = try await chain.chat(ChatRequest(prompt: "measure"), options: .init(providers: ["known"]))
            var explorers: [Task<ChatResponse, any Error>] = []
            for index in 0..<2 { explorers.append(Task { try await chain.chat("explore \(index)") }) }
            try await server.waitForRequests(2, model: "new")
            for index in 0..<10 {
                #expect(try await chain.chat("known \(index)").providerName == "known")
            }
            #expect(server.requests(for: "new").count == 2)
            for explorer in explorers { explorer.cancel() }
            for explorer in explorers { _ = try? await explorer.value }
        }
    }

    // MARK: Finding 22: a Gemini stream's trailing usage is kept

    @Test func aGeminiUsageEventAfterTheFinishReasonIsKept() async throws {
        try await withServer { server in
            // The usage comes in a read of its own, after the finish reason.
            let parts = [
                #"data: {"candidates":[{"content":{"role":"model","parts":[{"text":"Paris."}]},"finishReason":"STOP","index":0}]}"# + "\n\n",
                #"data: {"candidates":[],"usageMetadata":{"promptTokenCount":7,"candidatesTokenCount":2,"totalTokenCount":9}}"# + "\n\n",
            ]
            server.script(
                "gemini-2.0-flash",
                .chunkDelay(.milliseconds(50), .raw(status: 200, headers: ["content-type": "text/event-stream"], parts: parts))
            )
            let provider = Provider("google", model: "gemini-2.0-flash", apiKey: "secret-key-123", baseURL: server.baseURL)
            let answer = try await FallbackChain([provider], configuration: config()).stream("capital of France?").collect()
            #expect(answer.content == "Paris.")
            #expect(answer.usage == Usage(promptTokens: 7, completionTokens: 2))
        }
    }
}

/// A health store whose lease answers the test gives: records the forced lease requests (their periods).
final class LeaseScriptStore: HealthStore, Sendable {
    private struct State {
        var subscriber: (any HealthStoreSubscriber)?
        var forced: [Duration] = []
        var ordinary = 0
        var last: ProviderIdentity?
    }
    private let state = Mutex(State())

    func subscribe(_ subscriber: any HealthStoreSubscriber) { state.withLock { $0.subscriber = subscriber } }
    func publish(_ transition: HealthTransition) {}
    func requestProbeLease(for provider: ProviderIdentity, maxProbes: Int, duration: Duration) {
        state.withLock {
            $0.ordinary += 1
            $0.last = provider
        }
    }
    func requestForcedProbeLease(for provider: ProviderIdentity, maxProbes: Int, duration: Duration, period: Duration) {
        state.withLock {
            $0.forced.append(period)
            $0.last = provider
        }
    }

    var forcedRequests: [Duration] { state.withLock { $0.forced } }

    /// Answers the last request.
    func answer(granted: Bool, retryIn: Duration?) {
        let (subscriber, provider) = state.withLock { ($0.subscriber, $0.last) }
        if let subscriber, let provider { subscriber.probeLease(for: provider, granted: granted, retryIn: retryIn) }
    }
}
