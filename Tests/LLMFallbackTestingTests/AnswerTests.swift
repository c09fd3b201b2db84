import AsyncHTTPClient
import Foundation
import LLMFallbackTesting
import NIOHTTP1
import Testing

/// Non-streamed answers: each format's body has the provider's shape.
@Suite(.timeLimit(.minutes(1)))
struct AnswerTests {
    @Test(arguments: [Endpoint.openAI, .azure])
    func openAIAnswer(endpoint: Endpoint) async throws {
        try await withServer { server, client in
            server.script("gpt-4o", .text("Hello there world", usage: (prompt: 7, completion: 3)))
            let response = try await client.send(endpoint, to: server, model: "gpt-4o")
            #expect(response.status == 200)
            #expect(response.headers.first(name: "content-type") == "application/json")
            let body = try response.json()
            #expect((body["id"] as? String)?.hasPrefix("chatcmpl-mock-") == true)
            #expect(body["object"] as? String == "chat.completion")
            #expect(body["created"] as? Int == 1_700_000_000)
            #expect(body["model"] as? String == "gpt-4o")
            let choice = try #require(body.array("choices")?.first)
            #expect(choice["index"] as? Int == 0)
            #expect(choice["finish_reason"] as? String == "stop")
            let message = try #require(choice.object("message"))
            #expect(message["role"] as? String == "assistant")
            #expect(message["content"] as? String == "Hello there world")
            #expect(message["tool_calls"] == nil)
            let usage = try #require(body.object("usage"))
            #expect(usage["prompt_tokens"] as? Int == 7)
            #expect(usage["completion_tokens"] as? Int == 3)
            #expect(usage["total_tokens"] as? Int == 10)
        }
    }

    @Test func openAIToolCall() async throws {
        try await withServer { server, client in
            server.script("gpt-4o", .toolCall(name: "get_weather", arguments: #"{"city":"Paris"}"#, id: "call_42"))
            let body = try await client.send(.openAI, to: server, model: "gpt-4o").json()
            let choice = try #require(body.array("choices")?.first)
            #expect(choice["finish_reason"] as? String == "tool_calls")
            let message = try #require(choice.object("message"))
            #expect(message["content"] is NSNull)
            let call = try #require(message.array("tool_calls")?.first)
            #expect(call["id"] as? String == "call_42")
            #expect(call["type"] as? String == "function")
            #expect(call.object("function")?["name"] as? String == "get_weather")
            #expect(call.object("function")?["arguments"] as? String == #"{"city":"Paris"}"#)
        }
    }

    @Test func anthropicAnswer() async throws {
        try await withServer { server, client in
            server.script("claude-sonnet-4", .text("Bonjour tout le monde"))
            let response = try await client.send(.anthropic, to: server, model: "claude-sonnet-4")
            let body = try response.json()
            #expect((body["id"] as? String)?.hasPrefix("msg_mock_") == true)
            #expect(body["type"] as? String == "message")
            #expect(body["role"] as? String == "assistant")
            #expect(body["model"] as? String == "claude-sonnet-4")
            let block = try #require(body.array("content")?.first)
            #expect(block["type"] as? String == "text")
            #expect(block["text"] as? String == "Bonjour tout le monde")
            #expect(body["stop_reason"] as? String == "end_turn")
            #expect(body["stop_sequence"] is NSNull)
            #expect(body.object("usage")?["input_tokens"] as? Int == 10)
            #expect(body.object("usage")?["output_tokens"] as? Int == 4)
        }
    }

    @Test func anthropicToolUse() async throws {
        try await withServer { server, client in
            server.script("claude-sonnet-4", .toolCall(name: "get_weather", arguments: #"{"city":"Paris"}"#))
            let body = try await client.send(.anthropic, to: server, model: "claude-sonnet-4").json()
            #expect(body["stop_reason"] as? String == "tool_use")
            let block = try #require(body.array("content")?.first)
            #expect(block["type"] as? String == "tool_use")
            #expect(block["id"] as? String == "call_1")
            #expect(block["name"] as? String == "get_weather")
            #expect(block.object("input")?["city"] as? String == "Paris")
        }
    }

    @Test func geminiAnswer() async throws {
        try await withServer { server, client in
            server.script("gemini-2.0-flash", .text("Hallo Welt", usage: (prompt: 4, completion: 2)))
            let body = try await client.send(.gemini, to: server, model: "gemini-2.0-flash").json()
            let candidate = try #require(body.array("candidates")?.first)
            #expect(candidate.object("content")?["role"] as? String == "model")
            #expect(candidate.object("content")?.array("parts")?.first?["text"] as? String == "Hallo Welt")
            #expect(candidate["finishReason"] as? String == "STOP")
            #expect(candidate["index"] as? Int == 0)
            let usage = try #require(body.object("usageMetadata"))
            #expect(usage["promptTokenCount"] as? Int == 4)
            #expect(usage["candidatesTokenCount"] as? Int == 2)
            #expect(usage["totalTokenCount"] as? Int == 6)
            #expect(body["modelVersion"] as? String == "gemini-2.0-flash")
            #expect((body["responseId"] as? String)?.hasPrefix("mock-") == true)
        }
    }

    @Test func geminiFunctionCall() async throws {
        try await withServer { server, client in
            server.script("gemini-2.0-flash", .toolCall(name: "get_weather", arguments: #"{"city":"Paris"}"#))
            let body = try await client.send(.gemini, to: server, model: "gemini-2.0-flash").json()
            let part = try #require(body.array("candidates")?.first?.object("content")?.array("parts")?.first)
            #expect(part.object("functionCall")?["name"] as? String == "get_weather")
            #expect(part.object("functionCall")?.object("args")?["city"] as? String == "Paris")
        }
    }

    @Test(arguments: Endpoint.allCases)
    func unscriptedModelsAnswerHello(endpoint: Endpoint) async throws {
        try await withServer { server, client in
            let body = try await client.send(endpoint, to: server, model: "some-model").json()
            #expect(endpoint.answerText(body) == "Hello from some-model")
        }
    }

    @Test func finishReasonIsTranslatedPerFormat() async throws {
        try await withServer { server, client in
            for model in ["gpt-4o", "claude-sonnet-4", "gemini-2.0-flash"] {
                server.script(model, .text("cut short", finishReason: "length"))
            }
            let openAI = try await client.send(.openAI, to: server, model: "gpt-4o").json()
            #expect(openAI.array("choices")?.first?["finish_reason"] as? String == "length")
            let anthropic = try await client.send(.anthropic, to: server, model: "claude-sonnet-4").json()
            #expect(anthropic["stop_reason"] as? String == "max_tokens")
            let gemini = try await client.send(.gemini, to: server, model: "gemini-2.0-flash").json()
            #expect(gemini.array("candidates")?.first?["finishReason"] as? String == "MAX_TOKENS")
        }
    }

    @Test func textIsEscapedAsJSON() async throws {
        try await withServer { server, client in
            let text = "quote \" backslash \\ newline \n tab \t bell \u{07} café 🚀"
            server.script("gpt-4o", .text(text))
            let body = try await client.send(.openAI, to: server, model: "gpt-4o").json()
            #expect(Endpoint.openAI.answerText(body) == text)
        }
    }
}
