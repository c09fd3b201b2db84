import AsyncHTTPClient
import Foundation
import LLMFallback
import LLMFallbackGateway
import LLMFallbackTesting
import NIOCore
import NIOHTTP1
import ServiceLifecycle
import Testing

@Suite("Chat completions through the gateway")
struct ChatCompletionTests {
    @Test("a chat answers with a faithful chat.completion and the answering provider in the headers")
    func chat() async throws {
        try await withGateway(chains: { ["default": mockChain(on: $0)] }) { server, gateway in
            server.script("model-primary", .text("Paris is the capital.", usage: (prompt: 12, completion: 5)))
            let answer = try await gateway.chat("default")
            #expect(answer.status == 200)
            #expect(answer.headers.first(name: "content-type") == "application/json")
            #expect(answer.headers.first(name: "x-llm-fallback-provider") == "primary")
            #expect(answer.headers.first(name: "x-llm-fallback-model") == "model-primary")
            #expect(answer.headers.first(name: "x-llm-fallback-attempts") == "1")
            let json = answer.json
            #expect(json["object"] as? String == "chat.completion")
            #expect((json["id"] as? String)?.isEmpty == false)
            #expect(json["created"] as? Int != nil)
            #expect(json["model"] as? String == "model-primary")
            let choice = try #require((json["choices"] as? [[String: Any]])?.first)
            #expect(choice["index"] as? Int == 0)
            #expect(choice["finish_reason"] as? String == "stop")
            let message = try #require(choice["message"] as? [String: Any])
            #expect(message["role"] as? String == "assistant")
            #expect(message["content"] as? String == "Paris is the capital.")
            let usage = try #require(json["usage"] as? [String: Any])
            #expect(usage["prompt_tokens"] as? Int == 12)
            #expect(usage["completion_tokens"] as? Int == 5)
            #expect(usage["total_tokens"] as? Int == 17)
        }
    }

    @Test("text with quotes, control characters and non-ASCII survives both encodings intact")
    func escaping() async throws {
        let text = "He said \"hi\" \\ back\n\ttab \u{1} caf\u{E9} \u{1F389} </script>"
        try await withGateway(chains: { ["default": mockChain(on: $0)] }) { server, gateway in
            server.script("model-primary", .text(text, chunks: 4))
            let answer = try await gateway.chat("default")
            let message = (answer.json["choices"] as? [[String: Any]])?.first?["message"] as? [String: Any]
            #expect(message?["content"] as? String == text)
            let streamed = try await gateway.chat("default", stream: true)
            #expect(streamed.streamedText == text)
        }
    }

    @Test("a tool call comes back as message.tool_calls with content null")
    func toolCall() async throws {
        try await withGateway(chains: { ["default": mockChain(on: $0)] }) { server, gateway in
            server.script("model-primary", .toolCall(name: "get_weather", arguments: #"{"city":"Paris"}"#, id: "call_42"))
            let answer = try await gateway.chat("default")
            #expect(answer.status == 200)
            let choice = try #require((answer.json["choices"] as? [[String: Any]])?.first)
            #expect(choice["finish_reason"] as? String == "tool_calls")
            let message = try #require(choice["message"] as? [String: Any])
            #expect(message["content"] is NSNull)
            let call = try #require((message["tool_calls"] as? [[String: Any]])?.first)
            #expect(call["id"] as? String == "call_42")
            #expect(call["type"] as? String == "function")
            let function = try #require(call["function"] as? [String: Any])
            #expect(function["name"] as? String == "get_weather")
            #expect(function["arguments"] as? String == #"{"city":"Paris"}"#)
        }
    }

    @Test("every field the chat model knows reaches the provider")
    func fieldsAreHonoured() async throws {
        try await withGateway(chains: { ["default": mockChain(on: $0)] }) { server, gateway in
            let body = #"""
                {"model":"default","messages":[
                  {"role":"system","content":"Be terse."},
                  {"role":"user","content":[{"type":"text","text":"What is this?"},
                    {"type":"image_url","image_url":{"url":"https://example.com/cat.png","detail":"low"}}]},
                  {"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function",
                    "function":{"name":"lookup","arguments":"{\"q\":\"cat\"}"}}]},
                  {"role":"tool","tool_call_id":"call_1","content":"a cat"}],
                 "tools":[{"type":"function","function":{"name":"lookup","description":"Looks up",
                   "parameters":{"type":"object","properties":{"q":{"type":"string"}}},"strict":true}}],
                 "tool_choice":{"type":"function","function":{"name":"lookup"}},
                 "temperature":0.25,"top_p":0.5,"max_completion_tokens":77,"stop":"END","seed":7,"user":"u-1",
                 "parallel_tool_calls":false,
                 "response_format":{"type":"json_schema","json_schema":{"name":"answer","schema":{"type":"object"},"strict":true}},
                 "frequency_penalty":0.1}
                """#
            let answer = try await gateway.send(.POST, "/v1/chat/completions", body: body)
            #expect(answer.status == 200, "\(answer.body)")
            let sent = try #require(server.requests(for: "model-primary").last)
            let upstream = try #require(try JSONSerialization.jsonObject(with: Data(sent.body)) as? [String: Any])
            #expect(upstream["temperature"] as? Double == 0.25)
            #expect(upstream["top_p"] as? Double == 0.5)
            let maxTokens = upstream["max_tokens"] as? Int ?? upstream["max_completion_tokens"] as? Int
            #expect(maxTokens == 77)
            // Forwarded as the client wrote it (OpenAI takes a string or an array).
            #expect(upstream["stop"] as? String == "END")
            #expect(upstream["seed"] as? Int == 7)
            #expect(upstream["user"] as? String == "u-1")
            #expect(upstream["parallel_tool_calls"] as? Bool == false)
            let format = try #require(upstream["response_format"] as? [String: Any])
            #expect(format["type"] as? String == "json_schema")
            #expect((format["json_schema"] as? [String: Any])?["name"] as? String == "answer")
            let tool = try #require((upstream["tools"] as? [[String: Any]])?.first?["function"] as? [String: Any])
            #expect(tool["name"] as? String == "lookup")
            #expect(tool["strict"] as? Bool == true)
            #expect(((upstream["tool_choice"] as? [String: Any])?["function"] as? [String: Any])?["name"] as? String == "lookup")
            let messages = try #require(upstream["messages"] as? [[String: Any]])
            #expect(messages.map { $0["role"] as? String } == ["system", "user", "assistant", "tool"])
            let parts = try #require(messages[1]["content"] as? [[String: Any]])
            #expect((parts[1]["image_url"] as? [String: Any])?["detail"] as? String == "low")
            #expect(((messages[2]["tool_calls"] as? [[String: Any]])?.first?["function"] as? [String: Any])?["arguments"] as? String == #"{"q":"cat"}"#)
            #expect(messages[3]["tool_call_id"] as? String == "call_1")
        }
    }

    @Test("a failover is visible in the answering model and the headers, not to the client otherwise")
    func failover() async throws {
        try await withGateway(chains: { ["default": mockChain(on: $0)] }) { server, gateway in
            server.script("model-primary", .status(500))
            let answer = try await gateway.chat("default")
            #expect(answer.status == 200)
            #expect(answer.json["model"] as? String == "model-backup")
            #expect(answer.headers.first(name: "x-llm-fallback-provider") == "backup")
            #expect(answer.headers.first(name: "x-llm-fallback-model") == "model-backup")
            #expect(answer.headers.first(name: "x-llm-fallback-attempts") == "2")
        }
    }

    @Test("/v1/models lists the chains; /v1/models/{chain} names one")
    func models() async throws {
        try await withGateway(chains: { ["default": mockChain(on: $0), "fast": mockChain(on: $0)] }) { _, gateway in
            let list = try await gateway.send(.GET, "/v1/models")
            #expect(list.status == 200)
            #expect(list.json["object"] as? String == "list")
            let ids = (list.json["data"] as? [[String: Any]])?.compactMap { $0["id"] as? String }
            #expect(ids == ["default", "fast"])
            #expect((list.json["data"] as? [[String: Any]])?.first?["object"] as? String == "model")
            let one = try await gateway.send(.GET, "/v1/models/fast")
            #expect(one.json["id"] as? String == "fast")
            let missing = try await gateway.send(.GET, "/v1/models/nope")
            #expect(missing.status == 404)
        }
    }

    @Test("the start-up line names the address and the chains")
    func startupLine() async throws {
        try await withGateway(chains: { ["default": mockChain(on: $0)] }) { _, gateway in
            let line = gateway.logs.all.first { $0.contains("llm-fallback gateway listening on") }
            #expect(line?.contains("http://127.0.0.1:\(gateway.port)") == true)
            #expect(line?.contains("default (primary, backup)") == true)
        }
    }
}
