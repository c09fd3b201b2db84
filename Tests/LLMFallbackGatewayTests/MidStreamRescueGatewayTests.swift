import Foundation
import LLMFallback
import LLMFallbackGateway
import LLMFallbackTesting
import NIOHTTP1
import Testing

/// A stream that breaks after text reached the client is finished by the next provider, through both surfaces.
@Suite("Mid-stream rescue through the gateway")
struct MidStreamRescueGatewayTests {
    static let answer = "The quick brown fox jumps over the lazy dog"
    static let rest = " fox jumps over the lazy dog"

    static func chain(_ providers: [Provider], policy: MidStreamPolicy = .continue) -> FallbackChain {
        var configuration = FallbackChain.Configuration()
        configuration.midStreamPolicy = policy
        configuration.retry.maxRetryAfterWait = .zero
        return FallbackChain(providers, configuration: configuration)
    }

    static func claude(_ server: MockLLMServer, _ model: String) -> Provider {
        AnthropicSurfaceTests.anthropicProvider(on: server, name: model, model: model)
    }

    static func messagesBody(_ model: String = "claude", tools: Bool = false) -> String {
        let tool = tools ? #","tools":[{"name":"get_weather","input_schema":{"type":"object"}}]"# : ""
        return #"{"model":"\#(model)","max_tokens":200,"stream":true,"messages":[{"role":"user","content":"Tell me"}]\#(tool)}"#
    }

    /// An OpenAI stream cut in the middle of a tool call's arguments.
    static let cutOpenAIToolCall = MockBehavior.raw(
        status: 200,
        headers: ["content-type": "text/event-stream"],
        parts: [
            #"data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":null,"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"get_weather","arguments":""}}]},"finish_reason":null}]}"# + "\n\n",
            #"data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"city\":"}}]},"finish_reason":null}]}"# + "\n\n",
        ]
    )

    static func json(_ events: [String]) -> [[String: Any]] {
        events.compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
    }

    @Test("OpenAI surface: a cut stream is finished by a provider that takes a prefill; the last chunk names both")
    func openAISurfaceRescue() async throws {
        try await withGateway(chains: { server in
            ["default": Self.chain([mockProvider("primary", model: "model-cut", on: server), Self.claude(server, "claude-3-5-sonnet")])]
        }) { server, gateway in
            server.script("model-cut", .cutStream(afterChunks: 3, text: Self.answer))
            server.script("claude-3-5-sonnet", .text(Self.rest))
            let answer = try await gateway.chat("default", stream: true, includeUsage: true)
            #expect(answer.status == 200)
            #expect(answer.streamedText == Self.answer, "\(answer.body)")
            #expect(answer.events.last == "[DONE]")
            let finish = try #require(answer.chunks.last { (($0["choices"] as? [[String: Any]])?.first?["finish_reason"] as? String) != nil })
            let producers = (finish["llm_fallback"] as? [String: Any])?["providers"] as? [String]
            #expect(producers == ["primary", "claude-3-5-sonnet"])
            #expect(answer.chunks.filter { $0["llm_fallback"] != nil }.count == 1)
            let sent = try JSONValue(parsing: try #require(server.requests(for: "claude-3-5-sonnet").first).bodyText)
            #expect(sent["messages"]?.arrayValue?.last?["role"] == "assistant")
        }
    }

    @Test("OpenAI surface: a stream that was never rescued is relayed unchanged, with no llm_fallback member")
    func unrescuedStreamIsUnchanged() async throws {
        try await withGateway(chains: { server in
            ["default": Self.chain([mockProvider("primary", model: "model-whole", on: server), Self.claude(server, "claude-3-5-sonnet")])]
        }) { server, gateway in
            server.script("model-whole", .text(Self.answer))
            let answer = try await gateway.chat("default", stream: true)
            #expect(answer.streamedText == Self.answer)
            #expect(!answer.body.contains("llm_fallback"))
        }
    }

    @Test("Anthropic surface: a relayed stream that breaks is taken over where it stopped: one message, one text block")
    func anthropicRelayedTakeOver() async throws {
        for backup in ["claude-3-5-sonnet", "model-prefill"] {
            try await withGateway(configuration: AnthropicSurfaceTests.configuration, chains: { server in
                var local = mockProvider("local", model: "model-prefill", on: server)
                local.prefill = true
                let next = backup == "model-prefill" ? local : Self.claude(server, backup)
                return ["claude": Self.chain([Self.claude(server, "claude-3-5-haiku"), next])]
            }) { server, gateway in
                server.script("claude-3-5-haiku", .cutStream(afterChunks: 3, text: Self.answer))
                server.script(backup, .text(Self.rest))
                let answer = try await gateway.send(
                    .POST, "/v1/messages", body: Self.messagesBody(), headers: [("x-api-key", AnthropicSurfaceTests.gatewayKey)])
                #expect(answer.status == 200, "\(answer.body)")
                let names = AnthropicSurfaceTests.eventNames(answer.body)
                #expect(names.filter { $0 == "message_start" }.count == 1, "\(backup): \(names)")
                #expect(names.filter { $0 == "content_block_start" }.count == 1, "\(backup): \(names)")
                #expect(names.suffix(3) == ["content_block_stop", "message_delta", "message_stop"], "\(backup): \(names)")
                #expect(!names.contains("error"))
                let events = Self.json(answer.events)
                let deltas = events.filter { $0["type"] as? String == "content_block_delta" }
                #expect(deltas.allSatisfy { $0["index"] as? Int == 0 })
                #expect(deltas.compactMap { ($0["delta"] as? [String: Any])?["text"] as? String }.joined() == Self.answer)
                let delta = try #require(events.first { $0["type"] as? String == "message_delta" })
                #expect((delta["llm_fallback"] as? [String: Any])?["providers"] as? [String] == ["claude-3-5-haiku", backup == "model-prefill" ? "local" : backup])
                #expect(((delta["delta"] as? [String: Any])?["stop_reason"] as? String) == "end_turn")
            }
        }
    }

    @Test("Anthropic surface: a tool call cut mid-arguments ends with an error event, never continued")
    func anthropicToolCallIsNotContinued() async throws {
        try await withGateway(configuration: AnthropicSurfaceTests.configuration, chains: { server in
            ["claude": Self.chain([Self.claude(server, "claude-3-5-haiku"), Self.claude(server, "claude-3-5-sonnet")])]
        }) { server, gateway in
            let start = #"{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","model":"claude-3-5-haiku","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":10,"output_tokens":1}}}"#
            let block = #"{"type":"content_block_start","index":0,"content_block":{"type":"tool_use","id":"toolu_1","name":"get_weather","input":{}}}"#
            let delta = #"{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"{\"city\":"}}"#
            server.script(
                "claude-3-5-haiku",
                .raw(
                    status: 200, headers: ["content-type": "text/event-stream"],
                    parts: ["event: message_start\ndata: \(start)\n\n", "event: content_block_start\ndata: \(block)\n\n", "event: content_block_delta\ndata: \(delta)\n\n"]
                ))
            server.script("claude-3-5-sonnet", .toolCall(name: "get_weather", arguments: #"{"city":"Paris"}"#))
            let answer = try await gateway.send(
                .POST, "/v1/messages", body: Self.messagesBody(tools: true), headers: [("x-api-key", AnthropicSurfaceTests.gatewayKey)])
            let names = AnthropicSurfaceTests.eventNames(answer.body)
            #expect(names.last == "error", "\(names)")
            #expect(!names.contains("message_stop"))
            #expect(answer.body.contains("never continued"), "\(answer.body)")
            #expect(server.requests(for: "claude-3-5-sonnet").isEmpty)
        }
    }

    enum Next: String, CaseIterable, Sendable, CustomTestStringConvertible {
        case prefill, none, instructed, refused
        var testDescription: String { rawValue }
    }

    /// Every break × every kind of next provider, through both surfaces: the joined text is the answer exactly, or
    /// the stream ends with an error event; never a clean end on a partial answer.
    @Test("each break × each next provider, both surfaces: the whole answer or an error event", arguments: ["cut", "malformed", "streamError"], Next.allCases)
    func matrix(_ fault: String, _ next: Next) async throws {
        for surface in ["openai", "anthropic"] {
            try await withGateway(configuration: AnthropicSurfaceTests.configuration, chains: { server in
                let primary = surface == "openai" ? mockProvider("primary", model: "model-breaking", on: server) : Self.claude(server, "claude-3-5-haiku")
                let backup: Provider
                switch next {
                case .prefill, .refused: backup = Self.claude(server, "claude-3-5-sonnet")
                case .none, .instructed: backup = mockProvider("backup", model: "model-backup", on: server)
                }
                return ["claude": Self.chain([primary, backup], policy: next == .instructed ? .continueWithInstruction : .continue)]
            }) { server, gateway in
                let behaviour: MockBehavior
                switch fault {
                case "cut": behaviour = .cutStream(afterChunks: 3, text: Self.answer)
                case "malformed": behaviour = .malformedChunk(afterChunks: 3, text: Self.answer)
                default: behaviour = .streamError(afterChunks: 3, text: Self.answer)
                }
                server.script(surface == "openai" ? "model-breaking" : "claude-3-5-haiku", behaviour)
                switch next {
                case .prefill: server.script("claude-3-5-sonnet", .text(Self.rest))
                case .refused: server.script("claude-3-5-sonnet", .status(400, message: "This model does not support assistant message prefill."))
                case .none: server.script("model-backup", .text(Self.rest))
                case .instructed: server.script("model-backup", .text(Self.answer))
                }
                let label = "\(surface) \(fault) → \(next)"
                let text: String
                let endedWithError: Bool
                if surface == "openai" {
                    let answer = try await gateway.chat("claude", stream: true, bearer: AnthropicSurfaceTests.gatewayKey)
                    text = answer.streamedText
                    endedWithError = answer.chunks.last?["error"] != nil
                    #expect(endedWithError != (answer.events.last == "[DONE]"), "\(label): \(answer.body)")
                } else {
                    let answer = try await gateway.send(
                        .POST, "/v1/messages", body: Self.messagesBody(), headers: [("x-api-key", AnthropicSurfaceTests.gatewayKey)])
                    let events = Self.json(answer.events)
                    text = events.compactMap { ($0["delta"] as? [String: Any])?["text"] as? String }.joined()
                    let names = AnthropicSurfaceTests.eventNames(answer.body)
                    endedWithError = names.last == "error"
                    #expect(endedWithError != (names.last == "message_stop"), "\(label): \(names)")
                }
                switch next {
                case .prefill, .instructed:
                    #expect(!endedWithError && text == Self.answer, "\(label): '\(text)'")
                case .none, .refused:
                    #expect(endedWithError && Self.answer.hasPrefix(text), "\(label): '\(text)'")
                }
                if next == .none { #expect(server.requests(for: "model-backup").isEmpty, "\(label)") }
            }
        }
    }
}
