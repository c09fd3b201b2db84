import Foundation
import NIOCore
import NIOHTTP1
import Testing

@testable import LLMFallback

/// An OpenAI client's request, decoded by the OpenAI server half, sent to an Anthropic or Gemini provider by its
/// adapter, and read back by that format's server half: what the neutral model carries survives the trip.
@Suite struct WireCrossFormatTests {
    static let openAIBody = #"""
        {"model":"chain","messages":[
          {"role":"system","content":"Be brief."},
          {"role":"user","content":[{"type":"text","text":"Weather? ünï 👋"},{"type":"image_url","image_url":{"url":"https://example.com/p.png"}}]},
          {"role":"assistant","content":"Checking.","tool_calls":[{"id":"call_abc","type":"function","function":{"name":"get_weather","arguments":"{\"unit\":\"c\",\"city\":\"Paris\",\"n\":12345678901234567890}"}}]},
          {"role":"tool","tool_call_id":"call_abc","content":"18C"},
          {"role":"user","content":"Thanks"}],
         "tools":[{"type":"function","function":{"name":"get_weather","description":"Weather",
           "parameters":{"type":"object","properties":{"city":{"type":"string"},"unit":{"type":"string","enum":["c","f"]},"n":{"type":"integer"}},"required":["city"]}}},
          {"type":"function","function":{"name":"get_time"}}],
         "tool_choice":{"type":"function","function":{"name":"get_weather"}},
         "parallel_tool_calls":false,
         "temperature":0.25,"top_p":0.5,"max_tokens":300,"stop":["END","\n\n"],"user":"u1","seed":3,
         "presence_penalty":0.5,"frequency_penalty":0.25,"logit_bias":{"50256":-100}}
        """#

    static func openAIRequest(_ body: String = openAIBody) throws -> ChatRequest {
        try OpenAIChatServer.decodeRequest(ByteBuffer(string: body)).request
    }

    @Test func anOpenAIRequestThroughAnthropicAndBack() throws {
        let original = try Self.openAIRequest()
        let provider = try Provider("anthropic", model: "claude-sonnet-4-5", apiKey: "k").resolved()
        let parts = try AnthropicAdapter().makeRequest(original, for: provider, stream: true)
        let decoded = try AnthropicMessagesServer.decodeRequest(try #require(parts.body))
        let back = decoded.request
        #expect(decoded.stream)
        #expect(back.messages == original.messages)
        #expect(back.tools == original.tools)
        #expect(back.tools[0].parameters["properties"]?.members?.keys == ["city", "unit", "n"])
        #expect(back.toolChoice == original.toolChoice)
        #expect(back.parallelToolCalls == false)
        #expect(back.temperature == 0.25)
        #expect(back.topP == 0.5)
        #expect(back.maxTokens == 300)
        #expect(back.stop == ["END", "\n\n"])
        #expect(back.user == "u1")
        // What Messages has no place for is not sent, and the adapter says so.
        #expect(back.seed == nil && back.presencePenalty == nil && back.frequencyPenalty == nil)
        #expect(Set(AnthropicAdapter().droppedParameters(in: original, for: provider)) == ["seed", "presence_penalty", "frequency_penalty", "logit_bias"])
    }

    @Test func anOpenAIRequestThroughGeminiAndBack() throws {
        let original = try Self.openAIRequest()
        let model = "gemini-2.5-flash"
        let provider = try Provider("google", model: model, apiKey: "k").resolved()
        let parts = try GeminiAdapter().makeRequest(original, for: provider, stream: false)
        let back = try GeminiGenerateServer.decodeRequest(try #require(parts.body), model: model).request
        // Gemini's calls carry no id: the server half numbers them, and answers them by name.
        var expected = original.messages
        expected[2].toolCalls[0].id = "call_0"
        expected[3].toolCallID = "call_0"
        expected[3].toolName = "get_weather"
        #expect(back.messages == expected)
        #expect(back.tools == original.tools)
        #expect(back.tools[0].parameters["properties"]?.members?.keys == ["city", "unit", "n"])
        #expect(back.toolChoice == original.toolChoice)
        #expect(back.temperature == 0.25)
        #expect(back.topP == 0.5)
        #expect(back.maxTokens == 300)
        #expect(back.stop == ["END", "\n\n"])
        #expect(back.seed == 3)
        #expect(back.presencePenalty == 0.5)
        #expect(back.frequencyPenalty == 0.25)
        #expect(back.parallelToolCalls == nil && back.user == nil)
        #expect(Set(GeminiAdapter().droppedParameters(in: original, for: provider)) == ["parallel_tool_calls", "user", "logit_bias"])
    }

    @Test func reasoningEffortAndJSONOutputCrossToo() throws {
        let body = #"""
            {"model":"chain","messages":[{"role":"user","content":"Sum?"}],"reasoning_effort":"high","max_completion_tokens":30000,
             "response_format":{"type":"json_schema","json_schema":{"name":"response","schema":{"type":"object","properties":{"z":{"type":"number"},"a":{"type":"number"}}}}}}
            """#
        let original = try Self.openAIRequest(body)
        let anthropic = try Provider("anthropic", model: "claude-sonnet-4-5", apiKey: "k").resolved()
        let viaAnthropic = try AnthropicMessagesServer.decodeRequest(
            try #require(try AnthropicAdapter().makeRequest(original, for: anthropic, stream: false).body)).request
        #expect(viaAnthropic.reasoningEffort == .high)
        #expect(viaAnthropic.maxTokens == 30000)
        let gemini = try Provider("google", model: "gemini-2.5-pro", apiKey: "k").resolved()
        let viaGemini = try GeminiGenerateServer.decodeRequest(
            try #require(try GeminiAdapter().makeRequest(original, for: gemini, stream: false).body), model: "gemini-2.5-pro").request
        #expect(viaGemini.reasoningEffort == .high)
        #expect(viaGemini.responseFormat == original.responseFormat)
    }

    /// Each generated request, encoded for OpenAI, read by the OpenAI server half, and sent on to Anthropic and
    /// Gemini: the messages and tools every format carries come back from both.
    @Test(arguments: 0..<100)
    func generatedRequestsCrossEveryFormat(seed: Int) throws {
        var generator = WireCaseGenerator(.anthropic, seed: UInt64(seed) &+ 10_000)
        var request = generator.request(model: "m")
        request.reasoningEffort = nil
        let openAIProvider = try Provider("openai", model: "gpt-4o", apiKey: "k").resolved()
        let openAIBody = try #require(try OpenAIAdapter().makeRequest(request, for: openAIProvider, stream: false).body)
        // (OpenAI's format writes a base64 image as a data: URL; the other two give the bytes back.)
        let viaOpenAI = try OpenAIChatServer.decodeRequest(openAIBody).request
        #expect(viaOpenAI.tools == request.tools, "seed \(seed)")

        let anthropic = try Provider("anthropic", model: "claude", apiKey: "k").resolved()
        let viaAnthropic = try AnthropicMessagesServer.decodeRequest(
            try #require(try AnthropicAdapter().makeRequest(viaOpenAI, for: anthropic, stream: false).body)).request
        #expect(viaAnthropic.messages == request.messages, "seed \(seed)")
        #expect(viaAnthropic.tools == request.tools, "seed \(seed)")
        #expect(viaAnthropic.toolChoice == request.toolChoice, "seed \(seed)")
        #expect(viaAnthropic.stop == request.stop, "seed \(seed)")
        #expect(viaAnthropic.temperature == request.temperature && viaAnthropic.topP == request.topP, "seed \(seed)")

        let gemini = try Provider("google", model: "gemini-2.5-flash", apiKey: "k").resolved()
        let viaGemini = try GeminiGenerateServer.decodeRequest(
            try #require(try GeminiAdapter().makeRequest(viaOpenAI, for: gemini, stream: false).body), model: "gemini-2.5-flash").request
        #expect(viaGemini.messages.count == request.messages.count, "seed \(seed)")
        for (got, sent) in zip(viaGemini.messages, request.messages) {
            #expect(got.role == sent.role && got.content == sent.content, "seed \(seed)")
            #expect(got.toolCalls.map(\.name) == sent.toolCalls.map(\.name), "seed \(seed)")
            #expect(got.toolCalls.map(\.arguments) == sent.toolCalls.map(\.arguments), "seed \(seed)")
        }
        #expect(viaGemini.tools == request.tools, "seed \(seed)")
        #expect(viaGemini.toolChoice == request.toolChoice, "seed \(seed)")
        #expect(viaGemini.stop == request.stop && viaGemini.maxTokens == request.maxTokens, "seed \(seed)")
    }
}
