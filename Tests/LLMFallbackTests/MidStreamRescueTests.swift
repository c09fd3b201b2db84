import Foundation
import LLMFallbackTesting
import MetricsTestKit
import Testing

@testable import LLMFallback

/// A stream that breaks after text reached the caller is finished by the next provider that can continue it
/// (``MidStreamPolicy/continue``): each break × each kind of next provider, text and tool-call streams.
@Suite struct MidStreamRescueTests {
    static let answer = "The quick brown fox jumps over the lazy dog"
    /// What the primary delivers before it breaks: three chunks, one per word.
    static let delivered = "The quick brown"
    static let rest = " fox jumps over the lazy dog"

    enum Break: String, CaseIterable, Sendable, CustomTestStringConvertible {
        case cut, stall, malformed, streamError
        var testDescription: String { rawValue }

        var behaviour: MockBehavior {
            switch self {
            case .cut: return .cutStream(afterChunks: 3, text: MidStreamRescueTests.answer)
            case .stall: return .stallAfter(chunks: 3, text: MidStreamRescueTests.answer)
            case .malformed: return .malformedChunk(afterChunks: 3, text: MidStreamRescueTests.answer)
            case .streamError: return .streamError(afterChunks: 3, text: MidStreamRescueTests.answer)
            }
        }
    }

    /// Streams a question on `chain`; for a stalled primary (it sends nothing more and never closes), advances
    /// `clock` past the stall limit once its three chunks are in.
    static func run(_ chain: FallbackChain, clock: ManualClock, fault: Break) async throws -> [ChatChunk] {
        var chunks: [ChatChunk] = []
        var advanced = fault != .stall
        for try await chunk in chain.stream(ChatRequest(prompt: "tell me")) {
            chunks.append(chunk)
            if !advanced && chunks.filter(\.hasContent).count == 3 {
                advanced = true
                clock.advance(by: .seconds(10))
            }
        }
        return chunks
    }

    static func configuration(_ policy: MidStreamPolicy = .continue) -> FallbackChain.Configuration {
        var configuration = config()
        configuration.midStreamPolicy = policy
        configuration.streamTimeouts = StreamTimeouts(firstToken: .seconds(60), idle: .seconds(5))
        return configuration
    }

    static func lastMessages(_ request: RecordedRequest, format: Format) throws -> [JSONValue] {
        let body = try JSONValue(parsing: request.bodyText)
        return (format == .gemini ? body["contents"] : body["messages"])?.arrayValue ?? []
    }

    static func text(of message: JSONValue) -> String? {
        message["content"]?.stringValue ?? message["content"]?.arrayValue?.first?["text"]?.stringValue
            ?? message["parts"]?.arrayValue?.first?["text"]?.stringValue
    }

    // MARK: - Text streams

    @Test(arguments: Break.allCases)
    func aPrefillProviderFinishesTheAnswerSeamlessly(_ fault: Break) async throws {
        try await withServer { server in
            for (format, model) in [(Format.anthropic, "claude-3-5-sonnet-20241022"), (.gemini, "gemini-2.5-flash")] {
                server.reset()
                server.script("primary", fault.behaviour)
                server.script(model, .text(Self.rest, usage: (prompt: 30, completion: 6)))
                let clock = ManualClock()
                let chain = FallbackChain(
                    [Format.openAI.provider(server, model: "primary"), format.provider(server, model: model)],
                    configuration: Self.configuration(), clock: clock)
                let chunks = try await Self.run(chain, clock: clock, fault: fault)
                #expect(chunks.map(\.content).joined() == Self.answer, "\(fault) → \(format)")
                #expect(!chunks.contains { $0.kind == .restart })
                // The continuation was asked to go on from exactly the delivered text.
                let sent = try #require(server.requests(for: model).first)
                let messages = try Self.lastMessages(sent, format: format)
                let last = try #require(messages.last)
                #expect(last["role"]?.stringValue == (format == .gemini ? "model" : "assistant"))
                #expect(Self.text(of: last) == Self.delivered)
                #expect(messages.count == 2)
                // The last chunk names both producers; usage is the continuation's (the cut OpenAI stream reported none).
                let finish = try #require(chunks.last { $0.finishReason != nil })
                #expect(finish.producedBy == ["openAI/primary", "\(format.rawValue)/\(model)"])
                #expect(chunks.compactMap(\.usage).last?.promptTokens == 30)
                #expect(chain.healthReport()[0].failures == 1)
            }
        }
    }

    @Test(arguments: Break.allCases)
    func withoutAProviderThatCanContinueTheStreamEndsNamingTheBreak(_ fault: Break) async throws {
        try await withServer { server in
            server.script("primary", fault.behaviour)
            server.script("gpt-backup", .text(Self.rest))
            let clock = ManualClock()
            // The official OpenAI API does not continue a partial answer: it is passed over, untried.
            let chain = FallbackChain(
                [Format.openAI.provider(server, model: "primary"), Format.openAI.provider(server, model: "gpt-backup")],
                configuration: Self.configuration(), clock: clock)
            var delivered = ""
            do {
                for chunk in try await Self.run(chain, clock: clock, fault: fault) { delivered += chunk.content }
                Issue.record("expected the stream to end with an error, got a clean end on '\(delivered)'")
            } catch let error as StreamInterrupted {
                #expect(error.provider == "openAI/primary")
                #expect(error.deliveredChunks == 3)
                #expect(error.continuationFailure == "no provider left could continue it", "\(error)")
                #expect(error.trace.map(\.provider) == ["openAI/primary"])
            }
            #expect(server.requests(for: "gpt-backup").isEmpty)
        }
    }

    @Test(arguments: Break.allCases)
    func anInstructedContinuationFinishesOnAProviderWithoutPrefill(_ fault: Break) async throws {
        try await withServer { server in
            server.script("primary", fault.behaviour)
            // The model starts its answer over despite the instruction: the repeated start is cut at the seam.
            server.script("gpt-backup", .text(Self.answer))
            let clock = ManualClock()
            let chain = FallbackChain(
                [Format.openAI.provider(server, model: "primary"), Format.openAI.provider(server, model: "gpt-backup")],
                configuration: Self.configuration(.continueWithInstruction), clock: clock)
            let chunks = try await Self.run(chain, clock: clock, fault: fault)
            #expect(chunks.map(\.content).joined() == Self.answer)
            let messages = try Self.lastMessages(try #require(server.requests(for: "gpt-backup").first), format: .openAI)
            #expect(messages.count == 3)
            #expect(messages[1]["role"] == "assistant")
            #expect(Self.text(of: messages[1]) == Self.delivered)
            #expect(messages[2]["role"] == "user")
            #expect(Self.text(of: messages[2])?.contains("Continue it from exactly where it stopped") == true)
        }
    }

    @Test(arguments: Break.allCases)
    func aRefusedPrefillFailsOverAndIsNotAskedAgain(_ fault: Break) async throws {
        try await withServer { server in
            let refusal = "This model does not support assistant message prefill. The conversation must end with a user message."
            server.script("primary", [fault.behaviour, fault.behaviour])
            server.script("claude-sonnet-4-5", .status(400, message: refusal))
            server.script("gemini-2.5-pro", [.text(Self.rest), .text(Self.rest)])
            let clock = ManualClock()
            let chain = FallbackChain(
                [
                    Format.openAI.provider(server, model: "primary"), Format.anthropic.provider(server, model: "claude-sonnet-4-5"),
                    Format.gemini.provider(server, model: "gemini-2.5-pro"),
                ],
                configuration: Self.configuration(), clock: clock)
            let chunks = try await Self.run(chain, clock: clock, fault: fault)
            #expect(chunks.map(\.content).joined() == Self.answer)
            #expect(chunks.last { $0.finishReason != nil }?.producedBy == ["openAI/primary", "gemini/gemini-2.5-pro"])
            // A refusal is the request's fault, not the provider's: its breaker does not count it.
            #expect(chain.healthReport()[1].consecutiveFailures == 0)
            #expect(chain.healthReport()[1].state == .closed)
            // Learned: the next rescue passes the refusing provider over.
            let again = try await Self.run(chain, clock: clock, fault: fault)
            #expect(again.map(\.content).joined() == Self.answer)
            #expect(server.requests(for: "claude-sonnet-4-5").count == 1)
        }
    }

    @Test func aContinuationThatFailsNeverHidesTheBreak() async throws {
        try await withServer { server in
            server.script("primary", .cutStream(afterChunks: 3, text: Self.answer))
            server.script("claude-3-7-sonnet", .status(400, message: "Prefilling assistant messages is not supported for this model."))
            let metrics = TestMetrics()
            var configuration = Self.configuration()
            configuration.metricsFactory = metrics
            let chain = FallbackChain(
                [Format.openAI.provider(server, model: "primary"), Format.anthropic.provider(server, model: "claude-3-7-sonnet")],
                configuration: configuration)
            do {
                _ = try await chain.stream("tell me").collect()
                Issue.record("expected the stream to end with an error")
            } catch let error as StreamInterrupted {
                #expect(error.provider == "openAI/primary")
                #expect(error.underlying.kind == .connection)
                #expect(error.underlying.message.contains("stream cut"))
                #expect(error.underlying.message.contains("continuing it failed: anthropic/claude-3-7-sonnet: Prefilling"), "\(error)")
                #expect(error.continuationFailure == "continuing it failed on anthropic/claude-3-7-sonnet (invalid_request, HTTP 400)")
                #expect(error.trace.map(\.provider) == ["openAI/primary", "anthropic/claude-3-7-sonnet"])
                #expect(error.trace.last?.status == 400)
            }
            #expect(try metrics.expectCounter("llm_fallback_stream_continuations_total", [("result", "failed")]).totalValue == 1)
        }
    }

    @Test func aBreakAfterTheAnswerFinishedIsNotContinued() async throws {
        try await withServer { server in
            // message_delta (the stop reason) came, then the body ended without message_stop.
            let start = #"{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","model":"claude-3-5-haiku","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":5,"output_tokens":1}}}"#
            let parts = [
                "event: message_start\ndata: \(start)\n\n",
                #"event: content_block_start\#ndata: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}\#n\#n"#,
                #"event: content_block_delta\#ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Whole answer."}}\#n\#n"#,
                #"event: content_block_stop\#ndata: {"type":"content_block_stop","index":0}\#n\#n"#,
                #"event: message_delta\#ndata: {"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":3}}\#n\#n"#,
            ]
            server.script("claude-3-5-haiku", .raw(status: 200, headers: ["content-type": "text/event-stream"], parts: parts))
            server.script("claude-3-5-sonnet", .text(" More."))
            let chain = FallbackChain(
                [Format.anthropic.provider(server, model: "claude-3-5-haiku"), Format.anthropic.provider(server, model: "claude-3-5-sonnet")],
                configuration: Self.configuration())
            var text = ""
            do {
                for try await chunk in chain.stream("tell me") { text += chunk.content }
                Issue.record("expected the stream to end with an error")
            } catch let error as StreamInterrupted {
                #expect(error.continuationFailure?.contains("had finished") == true, "\(error)")
            }
            #expect(text == "Whole answer.")
            #expect(server.requests(for: "claude-3-5-sonnet").isEmpty)
        }
    }

    @Test func aContinuationWithNothingButItsFinishStillNamesItsProducer() async throws {
        try await withServer { server in
            server.script("primary", .cutStream(afterChunks: 9, text: Self.answer))
            server.script("claude-3-5-sonnet", .text("", usage: (prompt: 30, completion: 0)))
            let chain = FallbackChain(
                [Format.openAI.provider(server, model: "primary"), Format.anthropic.provider(server, model: "claude-3-5-sonnet")],
                configuration: Self.configuration())
            var chunks: [ChatChunk] = []
            for try await chunk in chain.stream("tell me") { chunks.append(chunk) }
            #expect(chunks.map(\.content).joined() == Self.answer)
            #expect(chunks.last { $0.finishReason != nil }?.producedBy == ["openAI/primary", "anthropic/claude-3-5-sonnet"])
        }
    }

    @Test func aRequestEndingInItsOwnAssistantMessageIsNotContinued() async throws {
        try await withServer { server in
            server.script("primary", .cutStream(afterChunks: 3, text: Self.answer))
            server.script("claude-3-5-sonnet", .text(Self.rest))
            let chain = FallbackChain(
                [Format.openAI.provider(server, model: "primary"), Format.anthropic.provider(server, model: "claude-3-5-sonnet")],
                configuration: Self.configuration())
            await #expect(throws: StreamInterrupted.self) {
                _ = try await chain.stream(messages: [.user("tell me"), .assistant("Sure:")]).collect()
            }
            #expect(server.requests(for: "claude-3-5-sonnet").isEmpty)
        }
    }

    @Test func aProviderPassedOverIsNeitherAdmittedNorReportedAsAFailover() async throws {
        try await withServer { server in
            server.script("primary", .cutStream(afterChunks: 3, text: Self.answer))
            server.script("claude-3-5-sonnet", .text(Self.rest))
            let failovers = Recorder<String>()
            let chain = FallbackChain(
                [
                    Format.openAI.provider(server, model: "primary"), Format.openAI.provider(server, model: "gpt-backup"),
                    Format.anthropic.provider(server, model: "claude-3-5-sonnet"),
                ],
                configuration: Self.configuration(),
                onFailover: { from, to, _ in failovers.append("\(from.name) -> \(to.name)") }
            )
            let response = try await chain.stream("tell me").collect()
            #expect(response.content == Self.answer)
            try await failovers.wait(for: 1)
            #expect(failovers.all == ["openAI/primary -> anthropic/claude-3-5-sonnet"])
            #expect(chain.healthReport()[1].attempts == 0)
            #expect(server.requests(for: "gpt-backup").isEmpty)
        }
    }

    @Test func usageIsWhatEveryProducerWasBilled() async throws {
        try await withServer { server in
            // An Anthropic stream reports its prompt in message_start; this one breaks before message_delta.
            server.script("claude-3-5-haiku", .cutStream(afterChunks: 3, text: Self.answer))
            server.script("claude-3-5-sonnet", .text(Self.rest, usage: (prompt: 30, completion: 6)))
            let metrics = TestMetrics()
            var configuration = Self.configuration()
            configuration.metricsFactory = metrics
            let chain = FallbackChain(
                [Format.anthropic.provider(server, model: "claude-3-5-haiku"), Format.anthropic.provider(server, model: "claude-3-5-sonnet")],
                configuration: configuration)
            let response = try await chain.stream("tell me").collect()
            #expect(try metrics.expectCounter("llm_fallback_stream_continuations_total", [("result", "finished")]).totalValue == 1)
            #expect(response.content == Self.answer)
            // The mock's default prompt count is 10, billed by the first attempt too.
            #expect(response.usage?.promptTokens == 40)
            #expect(response.usage?.completionTokens == 6)
            #expect(response.finishReason == .stop)
        }
    }

    @Test func aProvidersPrefillSettingOverridesItsKind() async throws {
        try await withServer { server in
            server.script("primary", .cutStream(afterChunks: 3, text: Self.answer))
            server.script("local", .text(Self.rest))
            var local = Format.openAI.provider(server, model: "local")
            local.prefill = true
            let chain = FallbackChain([Format.openAI.provider(server, model: "primary"), local], configuration: Self.configuration())
            let response = try await chain.stream("tell me").collect()
            #expect(response.content == Self.answer)
            let messages = try Self.lastMessages(try #require(server.requests(for: "local").first), format: .openAI)
            #expect(messages.last?["role"] == "assistant")
            #expect(Self.text(of: messages.last!) == Self.delivered)

            // And `prefill: false` passes a kind that would continue over.
            server.script("primary", .cutStream(afterChunks: 3, text: Self.answer))
            var claude = Format.anthropic.provider(server, model: "claude-3-5-sonnet")
            claude.prefill = false
            let refusing = FallbackChain([Format.openAI.provider(server, model: "primary"), claude], configuration: Self.configuration())
            await #expect(throws: StreamInterrupted.self) { _ = try await refusing.stream("tell me").collect() }
            #expect(server.requests(for: "claude-3-5-sonnet").isEmpty)
        }
    }

    // MARK: - Structure is never continued

    static let cutToolCall = MockBehavior.raw(
        status: 200,
        headers: ["content-type": "text/event-stream"],
        parts: [
            #"data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"primary","choices":[{"index":0,"delta":{"role":"assistant","content":null,"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"get_weather","arguments":""}}]},"finish_reason":null}]}"# + "\n\n",
            #"data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"primary","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"city\":"}}]},"finish_reason":null}]}"# + "\n\n",
        ]
    )

    @Test(arguments: [MidStreamPolicy.continue, .continueWithInstruction])
    func aToolCallIsNeverContinuedByAnotherProvider(_ policy: MidStreamPolicy) async throws {
        try await withServer { server in
            server.script("primary", Self.cutToolCall)
            server.script("claude-3-5-sonnet", .toolCall(name: "get_weather", arguments: #"{"city":"Paris"}"#))
            let tool = Tool(name: "get_weather", parameters: ["type": "object"])
            let chain = FallbackChain(
                [Format.openAI.provider(server, model: "primary"), Format.anthropic.provider(server, model: "claude-3-5-sonnet")],
                configuration: Self.configuration(policy))
            do {
                _ = try await chain.stream(messages: [.user("weather?")], tools: [tool]).collect()
                Issue.record("expected the stream to end with an error")
            } catch let error as StreamInterrupted {
                #expect(error.continuationFailure == "a tool call is never continued by another provider", "\(error)")
            }
            #expect(server.requests(for: "claude-3-5-sonnet").isEmpty)
        }
    }

    @Test func jsonOutputIsNeverContinuedByAnotherProvider() async throws {
        try await withServer { server in
            server.script("primary", .cutStream(afterChunks: 2, text: #"{"city": "Paris", "temperature": 21}"#))
            server.script("claude-3-5-sonnet", .text(#" "temperature": 21}"#))
            let chain = FallbackChain(
                [Format.openAI.provider(server, model: "primary"), Format.anthropic.provider(server, model: "claude-3-5-sonnet")],
                configuration: Self.configuration())
            do {
                _ = try await chain.stream(messages: [.user("weather?")], responseFormat: .jsonObject).collect()
                Issue.record("expected the stream to end with an error")
            } catch let error as StreamInterrupted {
                #expect(error.continuationFailure == "JSON output is never continued by another provider", "\(error)")
            }
            #expect(server.requests(for: "claude-3-5-sonnet").isEmpty)
        }
    }

    // MARK: - Wire forms of a prefill

    @Test func vLLMAndMistralAreAskedToContinueTheirWay() async throws {
        try await withServer { server in
            for (kind, check) in [
                ("vllm", { (body: JSONValue) in body["continue_final_message"] == true && body["add_generation_prompt"] == false }),
                ("mistral", { (body: JSONValue) in body["messages"]?.arrayValue?.last?["prefix"] == true }),
            ] {
                server.script("primary", .cutStream(afterChunks: 3, text: Self.answer))
                server.script(kind, .text(Self.rest))
                let backup = Provider(kind, model: kind, apiKey: "k", baseURL: server.openAIBaseURL)
                let chain = FallbackChain([Format.openAI.provider(server, model: "primary"), backup], configuration: Self.configuration())
                let response = try await chain.stream("tell me").collect()
                #expect(response.content == Self.answer, "\(kind)")
                let body = try JSONValue(parsing: try #require(server.requests(for: kind).last).bodyText)
                #expect(check(body), "\(kind): \(body)")
            }
        }
    }

    @Test func prefillDefaultsFollowTheModel() {
        let anthropic = ProviderKind.named("anthropic")!
        #expect(anthropic.prefillsByDefault(model: "claude-3-5-sonnet-20241022"))
        #expect(anthropic.prefillsByDefault(model: "claude-opus-4-20250514"))
        #expect(anthropic.prefillsByDefault(model: "claude-sonnet-4-5-20250929"))
        #expect(!anthropic.prefillsByDefault(model: "claude-opus-4-6"))
        #expect(!anthropic.prefillsByDefault(model: "us.anthropic.claude-sonnet-4-7-v1"))
        #expect(!anthropic.prefillsByDefault(model: "claude-sonnet-5"))
        #expect(!anthropic.prefillsByDefault(model: "my-alias"))
        let gemini = ProviderKind.named("google")!
        #expect(gemini.prefillsByDefault(model: "gemini-2.5-flash"))
        #expect(!gemini.prefillsByDefault(model: "gemini-3.6-flash"))
        #expect(!ProviderKind.named("openai")!.prefillsByDefault(model: "gpt-4o"))
        #expect(ProviderKind.named("mistral")!.assistantPrefill == .prefixFlag)
        #expect(!ProviderKind.named("deepseek")!.prefillsByDefault(model: "deepseek-chat"))
    }

    // MARK: - The seam

    static func join(_ delivered: String, _ continuation: [String], instructed: Bool = true) -> String {
        var seam = StreamSeam(delivered: delivered, cutsRepeatedEnd: instructed)
        var out: [ChatChunk] = []
        var released = false
        for piece in continuation {
            if released {
                out.append(ChatChunk(content: piece))
            } else if seam.hold(ChatChunk(content: piece)) {
                out += seam.release()
                released = true
            }
        }
        if !released { out += seam.release() }
        return delivered + out.map(\.content).joined()
    }

    @Test func theSeamCutsARepeatedOverlapAndKeepsAShortCoincidence() {
        // An instructed continuation that repeats the last sentence.
        let long = String(repeating: "Filler text here. ", count: 20) + "The last sentence was cut"
        #expect(Self.join(long, [" sentence was cut", " short, and then", " it went on."]) == long + " short, and then it went on.")
        // A short coincidence is text, not a repeat.
        #expect(Self.join("ban", ["ana", " split"]) == "banana split")
        // An answer started over: the whole delivered text is cut, however long.
        #expect(Self.join("The quick", ["The quick brown", " fox"]) == "The quick brown fox")
        let longer = (1...40).map { "Sentence \($0) of the answer." }.joined(separator: " ")
        let pieces = stride(from: 0, to: longer.count, by: 7).map { String(Array(longer)[$0..<min($0 + 7, longer.count)]) }
        #expect(longer.count > 1000)
        #expect(Self.join(longer, pieces + [" And the end."], instructed: false) == longer + " And the end.")
        #expect(Self.join(longer, pieces + [" And the end."]) == longer + " And the end.")
        // A start-over that diverges is not cut (there is no telling what it repeats).
        #expect(Self.join("The quick brown", ["The quick red", " fox"], instructed: false) == "The quick brownThe quick red fox")
        // Whitespace a prefill left out and the continuation put back comes back once; other whitespace stays.
        #expect(Self.join("Hello world ", [" and more"]) == "Hello world and more")
        #expect(Self.join("Line one\n\n", ["\n\nLine two"]) == "Line one\n\nLine two")
        #expect(Self.join("A sentence. ", ["\n\nNext"]) == "A sentence. \n\nNext")
        #expect(Self.join("Hello", [" world"]) == "Hello world")
        // A prefill continues the very text: a repeated run there is content (a rule, a table), not an echo.
        let rule = "Title\n" + String(repeating: "-", count: 20)
        #expect(Self.join(rule, [String(repeating: "-", count: 20), "\nBody"], instructed: false) == rule + String(repeating: "-", count: 20) + "\nBody")
        // A finish before enough text releases what was held.
        var seam = StreamSeam(delivered: String(repeating: "x", count: 300), cutsRepeatedEnd: true)
        var finish = ChatChunk(content: "!")
        finish.finishReason = .stop
        let decided = seam.hold(finish)
        #expect(decided)
        let released = seam.release()
        #expect(released.map(\.content) == ["!"])
    }
}
