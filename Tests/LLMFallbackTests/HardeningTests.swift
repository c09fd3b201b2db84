import Foundation
import LLMFallbackTesting
import NIOCore
import NIOHTTP1
import Synchronization
import Testing

@testable import LLMFallback

/// Bytes from a provider are hostile: no number, no length of outage and no stream shape may crash the process,
/// and a truncated answer is never a success (issue 11; review findings 1, 6, 11, 16, 24, 26).
@Suite struct HardeningTests {
    // MARK: - Numbers from outside never trap (finding 1)

    @Test(arguments: [
        ("retry-after", "1e30"), ("retry-after", "1e400"), ("retry-after", "10000000000000000000"),
        ("retry-after", "1e16"), ("retry-after-ms", "1e30"), ("retry-after-ms", "9223372036854775807"),
    ])
    func absurdRetryAfterIsClampedNotTrapped(_ header: (String, String)) {
        let delay = ErrorClassifier.retryAfter(from: HTTPHeaders([(header.0, header.1)]))
        #expect(delay == ProviderError.longestRetryAfter)
        let error = ProviderError(.rateLimited, status: 429, message: "slow down", retryAfter: delay)
        #expect(error.description.contains("retry after 86400s"))
    }

    @Test(arguments: [
        "-1", "nan", "NaN", "inf", "-inf", "infinity", "abc", "", "1,5", String(repeating: "9", count: 5000),
        // Not the digits RFC 9110 asks for: Swift's Double(_:) reads these as 16 s, 16 s and 1 s.
        "0x10", "0x1p4", "0X1", "1e", "+5", "1.2.3", ".", "5s",
    ])
    func retryAfterThatIsNotANumberIsIgnored(_ value: String) {
        let delay = ErrorClassifier.retryAfter(from: HTTPHeaders([("retry-after", value)]))
        // None is a delay (5,000 digits are too long to be one): no hint at all, and no trap.
        #expect(delay == nil)
    }

    @Test func googleRetryDelayIsClamped() {
        #expect(ErrorClassifier.parseGoogleDuration("1e30s") == ProviderError.longestRetryAfter)
        #expect(ErrorClassifier.parseGoogleDuration("infs") == nil)
        #expect(ErrorClassifier.parseGoogleDuration("-5s") == nil)
        #expect(ErrorClassifier.parseGoogleDuration("1.5s") == .milliseconds(1500))
    }

    @Test func anErrorsRetryAfterIsClampedHoweverItIsMade() {
        let error = ProviderError(.rateLimited, message: "", retryAfter: .seconds(Int64.max))
        #expect(error.retryAfter == ProviderError.longestRetryAfter)
    }

    @Test func durationsFormatWithoutTrapping() {
        // Past Int64.max seconds, Duration.components traps; formatting must not.
        let huge = Duration.seconds(Int64.max) + .seconds(Int64.max)
        #expect(formatDuration(huge).hasSuffix("s"))
        #expect(formatDuration(.seconds(Int64.max)).hasSuffix("s"))
        #expect(formatDuration(.milliseconds(250)) == "250ms")
        #expect(formatDuration(.milliseconds(1500)) == "1.5s")
        #expect(huge.milliseconds > 1e21)
        #expect(huge.clampedNanoseconds == .max)
        #expect(Duration.seconds(-5).clampedNanoseconds == 0)
        #expect(Duration.milliseconds(1.5).clampedNanoseconds == 1_500_000)
    }

    @Test func tokenCountsSaturate() {
        let usage = Usage(promptTokens: .max, completionTokens: 5)
        #expect(usage.totalTokens == .max)
        let negative = Usage(promptTokens: -3, completionTokens: -1, totalTokens: -9, cachedTokens: -1)
        #expect(negative.promptTokens == 0 && negative.completionTokens == 0 && negative.totalTokens == 0 && negative.cachedTokens == 0)
    }

    @Test func anthropicTokenSumsSaturate() throws {
        let body = #"""
            {"id":"msg_1","type":"message","role":"assistant","model":"claude","content":[{"type":"text","text":"hi"}],
             "stop_reason":"end_turn","usage":{"input_tokens":9223372036854775807,"cache_creation_input_tokens":1,"cache_read_input_tokens":9223372036854775807,"output_tokens":9223372036854775807}}
            """#
        let resolved = try Provider("anthropic", model: "claude", apiKey: "k").resolved(environment: [:])
        let response = try AnthropicAdapter().decodeResponse(ByteBuffer(string: body), headers: [:], for: resolved)
        #expect(response.usage?.promptTokens == .max)
        #expect(response.usage?.totalTokens == .max)

        var decoder = AnthropicStreamDecoder(provider: "anthropic", model: "claude")
        _ = try decoder.decode(ServerSentEvent(event: "message_start", data: #"{"type":"message_start","message":{"id":"m","model":"claude","usage":{"input_tokens":9223372036854775807,"cache_creation_input_tokens":5}}}"#))
        let delta = try decoder.decode(ServerSentEvent(event: "message_delta", data: #"{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":9223372036854775807}}"#))
        #expect(delta?.usage?.promptTokens == .max)
        #expect(delta?.usage?.totalTokens == .max)
    }

    @Test func geminiTokenSumsSaturate() throws {
        let body = #"""
            {"candidates":[{"content":{"role":"model","parts":[{"text":"hi"}]},"finishReason":"STOP"}],
             "usageMetadata":{"promptTokenCount":1,"candidatesTokenCount":9223372036854775807,"thoughtsTokenCount":9223372036854775807}}
            """#
        let resolved = try Provider("google", model: "gemini", apiKey: "k").resolved(environment: [:])
        let response = try GeminiAdapter().decodeResponse(ByteBuffer(string: body), headers: [:], for: resolved)
        #expect(response.usage?.completionTokens == .max)
    }

    /// The scenario the project exists for: the only provider is down and every request fails. Each failure is
    /// a slow latency sample; the average must stay bounded however long the outage lasts (it used to double per
    /// failure until converting it to a `Duration` trapped, after about 300 requests).
    @Test func aLongOutageKeepsEveryFigureBounded() async throws {
        try await withServer { server in
            server.script("down", .status(503))
            // Without a breaker, so that every request fails upstream (a breaker now sheds most of them).
            let chain = FallbackChain([server.openAI("down")], configuration: .init(circuitBreaker: .disabled, retry: .immediate))
            for _ in 0..<600 {
                await #expect(throws: (any Error).self) { try await chain.chat("hi") }
            }
            let health = chain.healthReport()[0]
            #expect(health.failures >= 300)
            let latency = try #require(health.latency)
            #expect(latency <= .seconds(3600))
            #expect(health.lastError?.contains("overloaded") == true)
        }
    }

    @Test func aLongOutageInTheRegistryAlone() {
        let registry = HealthRegistry(count: 1, breaker: .init(), latencyMaxAge: .seconds(30))
        for step in 0..<100_000 {
            _ = registry.record(0, outcome: .failure, wasProbe: false, now: .milliseconds(step), latency: .seconds(5), error: nil)
        }
        let snapshot = registry.snapshot(providers: [Provider("openai", model: "m", apiKey: "k")], now: .milliseconds(100_000))
        #expect(snapshot[0].latency.map { $0 > .seconds(3599) && $0 <= .seconds(3600) } == true)
        #expect(registry.latencyPercentile(0, 0.95, now: .milliseconds(100_000)) == .seconds(5))
        #expect(registry.latencyPercentile(0, .nan, now: .milliseconds(100_000)) != nil)
    }

    /// `retry-after: 1e30` from an "OpenAI-compatible" upstream used to kill the process.
    @Test(arguments: ["1e30", "1e400", "10000000000000000000", "1e16"])
    func absurdRetryAfterOverHTTPFailsOver(_ value: String) async throws {
        try await withServer { server in
            server.script("limited", .status(429, headers: ["retry-after": value]))
            server.script("backup", .text("from the backup"))
            let chain = FallbackChain([server.openAI("limited"), server.openAI("backup")], configuration: config())
            let response = try await chain.chat("hi")
            #expect(response.content == "from the backup")
            let health = chain.healthReport()
            #expect(health[0].retryAfterRemaining.map { $0 <= ProviderError.longestRetryAfter } == true)
            #expect(health[0].lastError?.contains("retry after") == true)
            // Every request afterwards still answers.
            #expect(try await chain.chat("again").content == "from the backup")
        }
    }

    // MARK: - Unexpected statuses fail over (finding 16)

    @Test(arguments: [301, 302, 307, 308, 402, 405, 410, 418, 451, 599, 600, 999])
    func anUnexpectedStatusFailsOver(_ status: Int) async throws {
        try await withServer { server in
            server.script("odd", .raw(status: status, headers: ["location": "http://elsewhere.invalid/"], body: "<html>moved</html>"))
            server.script("backup", .text("from the backup"))
            let chain = FallbackChain([server.openAI("odd"), server.openAI("backup")], configuration: config())
            let response = try await chain.chat("hi")
            #expect(response.content == "from the backup")
            #expect(response.trace.count == 2)
        }
    }

    @Test func statusesThatBlameTheRequestStillStop() {
        #expect(ErrorClassifier.kind(forStatus: 400) == .invalidRequest)
        #expect(ErrorClassifier.kind(forStatus: 422) == .invalidRequest)
        #expect(ErrorClassifier.kind(forStatus: 302) == .invalidResponse)
        #expect(ErrorClassifier.kind(forStatus: 418) == .invalidResponse)
        #expect(ErrorClassifier.kind(forStatus: 413) == .contextLengthExceeded)
    }

    // MARK: - Truncation is never success (finding 6)

    @Test(arguments: Format.allCases)
    func aStreamEndingWithoutItsEndAfterContentIsInterrupted(_ format: Format) async throws {
        try await withServer { server in
            server.script("m", .missingTerminator(text: "all the words"))
            let chain = singleChain(format.provider(server, model: "m"))
            var received = ""
            do {
                for try await chunk in chain.stream("hi") { received += chunk.content }
                Issue.record("a truncated stream was reported as complete")
            } catch let error as StreamInterrupted {
                #expect(error.underlying.kind == .connection)
                #expect(error.deliveredChunks > 0)
            }
            #expect(!received.isEmpty)
            let health = chain.healthReport()[0]
            #expect(health.successes == 0)
            #expect(health.failuresByClass["connection_error"] == 1)
        }
    }

    @Test func aStreamEndingWithoutAnythingFailsOver() async throws {
        try await withServer { server in
            server.script("empty", .raw(status: 200, headers: ["content-type": "text/event-stream"], body: ": keep-alive\n\n"))
            server.script("backup", .text("from the backup"))
            let chain = FallbackChain([server.openAI("empty"), server.openAI("backup")], configuration: config())
            let response = try await chain.stream("hi").collect()
            #expect(response.content == "from the backup")
            #expect(chain.healthReport()[0].failuresByClass["connection_error"] == 1)
        }
    }

    @Test func aLastEventWithoutItsBlankLineIsStillRead() async throws {
        try await withServer { server in
            let body = #"data: {"choices":[{"index":0,"delta":{"content":"whole"}}]}"# + "\n\n"
                + #"data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"# + "\n\n" + "data: [DONE]"
            server.script("m", .raw(status: 200, headers: ["content-type": "text/event-stream"], body: body))
            let response = try await singleChain(server.openAI("m")).stream("hi").collect()
            #expect(response.content == "whole")
            #expect(response.finishReason == .stop)
        }
    }

    @Test func anOpenAIStreamEndedByDoneBeforeAFinishReasonIsACut() async throws {
        // The soak's `done_early` fault: `[DONE]` after part of the text and no finish_reason. OpenAI and the
        // compatible servers send a finish_reason on every answer, so this is a cut, never a success.
        try await withServer { server in
            let body = #"data: {"choices":[{"index":0,"delta":{"content":"half an"},"finish_reason":null}]}"# + "\n\n"
                + "data: [DONE]\n\n"
            server.script("early", .raw(status: 200, headers: ["content-type": "text/event-stream"], body: body))
            server.script("done-only", .raw(status: 200, headers: ["content-type": "text/event-stream"], body: "data: [DONE]\n\n"))
            server.script("backup", .text("from the backup"))
            let chain = FallbackChain([server.openAI("done-only"), server.openAI("backup")], configuration: config())
            let response = try await chain.stream("hi").collect()
            #expect(response.content == "from the backup")
            #expect(chain.healthReport()[0].failuresByClass["connection_error"] == 1)
            await #expect(throws: StreamInterrupted.self) {
                _ = try await singleChain(server.openAI("early")).stream("hi").collect()
            }
        }
    }

    @Test func anOpenAIStreamWithAFinishReasonButNoDoneIsComplete() async throws {
        try await withServer { server in
            let body = #"data: {"choices":[{"index":0,"delta":{"content":"whole"},"finish_reason":null}]}"# + "\n\n"
                + #"data: {"choices":[{"index":0,"delta":{},"finish_reason":"length"}]}"#
            server.script("m", .raw(status: 200, headers: ["content-type": "text/event-stream"], body: body))
            let response = try await singleChain(server.openAI("m")).stream("hi").collect()
            #expect(response.content == "whole")
            #expect(response.finishReason == .length)
        }
    }

    @Test func aNonStreamBodyCutShortFailsOver() async throws {
        try await withServer { server in
            let cut = #"{"id":"c","object":"chat.completion","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"half an ans"#
            server.script("cut", .raw(status: 200, headers: ["content-type": "application/json"], body: cut))
            server.script("backup", .text("from the backup"))
            let chain = FallbackChain([server.openAI("cut"), server.openAI("backup")], configuration: config())
            let response = try await chain.chat("hi")
            #expect(response.content == "from the backup")
            #expect(chain.healthReport()[0].failuresByClass["invalid_response"] == 1)
        }
    }

    // MARK: - Streams are bounded (finding 11)

    @Test func theParserRefusesALineWithoutEnd() throws {
        var parser = ServerSentEventParser(maximumEventBytes: 1024)
        var events: [ServerSentEvent] = []
        let flood = [UInt8](repeating: UInt8(ascii: "a"), count: 1000)
        try parser.feed(Array("data: ".utf8), into: &events)
        #expect(throws: ServerSentEventParser.EventTooLarge.self) {
            try parser.feed(flood, into: &events)
            try parser.feed(flood, into: &events)
        }
    }

    @Test func theParserRefusesAnEventOfManyLines() throws {
        var parser = ServerSentEventParser(maximumEventBytes: 1024)
        var events: [ServerSentEvent] = []
        let line = Array(("data: " + String(repeating: "b", count: 100) + "\n").utf8)
        #expect(throws: ServerSentEventParser.EventTooLarge.self) {
            for _ in 0..<20 { try parser.feed(line, into: &events) }
        }
        #expect(events.isEmpty)
    }

    @Test func theParserFinishesAPendingEvent() throws {
        var parser = ServerSentEventParser()
        var events: [ServerSentEvent] = []
        try parser.feed(Array("event: x\ndata: last".utf8), into: &events)
        #expect(events.isEmpty)
        try parser.finish(into: &events)
        #expect(events == [ServerSentEvent(event: "x", data: "last")])
    }

    @Test func anUpstreamStreamingWithoutNewlinesFailsOver() async throws {
        try await withServer { server in
            let flood = "data: " + String(repeating: "x", count: 300_000)
            server.script("flood", .raw(status: 200, headers: ["content-type": "text/event-stream"], body: flood))
            server.script("backup", .text("from the backup"))
            var configuration = config()
            configuration.maxStreamEventBytes = 64 << 10
            let chain = FallbackChain([server.openAI("flood"), server.openAI("backup")], configuration: configuration)
            let response = try await chain.stream("hi").collect()
            #expect(response.content == "from the backup")
            #expect(chain.healthReport()[0].failuresByClass["invalid_response"] == 1)
        }
    }

    @Test func aStreamLongerThanTheLimitIsInterrupted() async throws {
        try await withServer { server in
            let words = (1...5_000).map { "word\($0)" }.joined(separator: " ")
            server.script("long", .text(words))
            var configuration = config()
            configuration.maxResponseBytes = 64 << 10
            let chain = FallbackChain([server.openAI("long")], configuration: configuration)
            do {
                for try await _ in chain.stream("hi") {}
                Issue.record("an over-long stream was accepted")
            } catch let error as StreamInterrupted {
                #expect(error.underlying.kind == .invalidResponse)
                #expect(error.underlying.message.contains("maxResponseBytes"))
            }
        }
    }

    // MARK: - Weights (finding 26), callbacks (finding 24), keys in reflection

    @Test func weightsThatAreNotFiniteDoNotTrap() {
        let providers = [Double.infinity, .nan, -1, .greatestFiniteMagnitude, 1].enumerated().map { offset, weight in
            var provider = Provider("openai", model: "m\(offset)", apiKey: "k", weight: weight)
            provider.name = "p\(offset)"
            return provider
        }
        let chain = FallbackChain(providers: providers, strategy: .weighted)
        #expect(chain.weights.allSatisfy { $0.isFinite && $0 >= 0 })
        var random = ChainRandom(seeded: SeededGenerator(seed: 1))
        for counter in 0..<100 {
            let order = Router.order(Array(0..<5), strategy: .weighted, weights: chain.weights, latencies: [nil, nil, nil, nil, nil], counter: counter, random: &random)
            #expect(order.sorted() == [0, 1, 2, 3, 4])
        }
    }

    @Test func callbacksOverflowDropsTheOldestAndStaysBounded() async throws {
        let dispatcher = CallbackDispatcher()
        let gate = DispatchSemaphore(value: 0)
        let ran = Mutex([Int]())
        dispatcher.dispatch { gate.wait() }  // blocks the callback queue, as a slow callback would
        for number in 0..<(CallbackDispatcher.limit * 3) {
            dispatcher.dispatch { ran.locked { $0.append(number) } }
        }
        #expect(dispatcher.pendingCount <= CallbackDispatcher.limit)
        gate.signal()
        let last = CallbackDispatcher.limit * 3 - 1
        try await eventually("the callbacks to run") { ran.locked { $0.last == last } }
        let numbers = ran.locked { $0 }
        #expect(numbers.count >= CallbackDispatcher.limit - 1)
        #expect(numbers.last == CallbackDispatcher.limit * 3 - 1)
        #expect(numbers == numbers.sorted())
    }

    @Test func reflectionNeverShowsTheKey() throws {
        let secret = "sk-live-0123456789abcdef"
        let provider = Provider("openai", model: "gpt-4o", apiKey: secret, baseURL: "https://user:pw-secret@example.com/v1?api_key=qs-secret&x=1")
        let resolved = try provider.resolved(environment: [:])
        var dumped = ""
        dump(resolved, to: &dumped)
        dump(provider, to: &dumped)
        let texts = [dumped, String(describing: resolved), String(reflecting: resolved), String(reflecting: provider), "\(provider)"]
        for text in texts {
            #expect(!text.contains(secret))
            #expect(!text.contains("pw-secret"))
            #expect(!text.contains("qs-secret"))
        }
        #expect(String(reflecting: resolved).contains("x=1"))
    }
}

@Suite struct BackoffBoundsTests {
    @Test(arguments: [Double.nan, .infinity, 1e308, 2])
    func backoffIsTotal(_ multiplier: Double) {
        let policy = RetryPolicy(baseDelay: .seconds(Int64.max / 4), maxDelay: .seconds(Int64.max / 2), multiplier: multiplier)
        var generator = SeededGenerator(seed: 7)
        for retry in [1, 2, 50, Int.max] {
            let delay = policy.delay(forRetry: retry, using: &generator)
            #expect(delay >= .zero && delay <= Bounds.longestDuration)
        }
    }
}
