import Foundation
import LLMFallback
import LLMFallbackGateway
import LLMFallbackTesting
import NIOHTTP1
import Testing

/// Nothing a client sends is silently lost (issue 14): a provider that speaks the client's format gets the client's
/// body with only the model changed, members in order and numbers exact; a provider of another format gets what has
/// a counterpart, and the rest is reported as dropped; the answer keeps what the chat model does not hold.
@Suite("Fidelity: what the client sends reaches the provider")
struct FidelityTests {
    /// Every parameter of the issue's list, a field of the future, a schema whose keys are not in alphabetical order,
    /// and a 20-digit integer.
    static let richBody = #"""
        {"model":"default","messages":[{"role":"user","content":"Hi"}],
         "reasoning_effort":"high","logprobs":true,"top_logprobs":3,"frequency_penalty":0.5,"presence_penalty":-0.25,
         "logit_bias":{"50256":-100},"metadata":{"k":"v"},"store":true,"service_tier":"flex",
         "prediction":{"type":"content","content":"Hello"},"a_field_of_the_future":{"z":1,"a":[2,3]},
         "response_format":{"type":"json_schema","json_schema":{"name":"city","strict":true,"schema":{"type":"object",
           "properties":{"zeta":{"type":"string"},"alpha":{"type":"integer","maximum":12345678901234567890}},
           "required":["zeta","alpha"]}}},
         "max_completion_tokens":50}
        """#

    @Test("an OpenAI provider receives the client's body: every member, in order, numbers exact, only model changed")
    func passthroughToOpenAI() async throws {
        try await withGateway(chains: { ["default": mockChain(on: $0)] }) { server, gateway in
            let answer = try await gateway.send(.POST, "/v1/chat/completions", body: Self.richBody)
            #expect(answer.status == 200, "\(answer.body)")
            #expect(answer.headers.first(name: "x-llm-fallback-dropped-params") == nil)
            let sent = try #require(server.requests(for: "model-primary").last)
            var upstream = try #require(try JSONValue(parsing: Data(sent.body)).members)
            var client = try #require(try JSONValue(parsing: Self.richBody).members)
            #expect(upstream["model"] == "model-primary")
            // The compatible kind spells the limit max_tokens; OpenAI itself would get max_completion_tokens.
            #expect(upstream["max_tokens"] == 50)
            for key in ["model", "max_tokens", "max_completion_tokens"] {
                upstream.removeValue(forKey: key)
                client.removeValue(forKey: key)
            }
            #expect(upstream == client, "\(upstream) != \(client)")
            let text = String(decoding: sent.body, as: UTF8.self)
            #expect(text.contains(#""properties":{"zeta":{"type":"string"},"alpha":{"type":"integer","maximum":12345678901234567890}}"#))
        }
    }

    @Test("a stream's body keeps the client's stream_options and adds the usage the chain needs")
    func passthroughStreamOptions() async throws {
        try await withGateway(chains: { ["default": mockChain(on: $0)] }) { server, gateway in
            let body = #"{"model":"default","messages":[{"role":"user","content":"Hi"}],"stream":true,"stream_options":{"include_obfuscation":false},"store":false}"#
            let answer = try await gateway.send(.POST, "/v1/chat/completions", body: body)
            #expect(answer.status == 200)
            #expect(answer.events.last == "[DONE]")
            let sent = try #require(server.requests(for: "model-primary").last)
            let upstream = try #require(try JSONValue(parsing: Data(sent.body)).members)
            #expect(upstream["stream"] == true)
            #expect(upstream["stream_options"] == ["include_obfuscation": false, "include_usage": true])
            #expect(upstream["store"] == false)
            // The client did not ask for usage: no usage chunk reaches it.
            #expect(!answer.events.contains { $0.contains(#""choices":[]"#) })
        }
    }

    @Test("an Anthropic provider gets what has a counterpart; the rest is dropped and named in a header")
    func crossFormatToAnthropic() async throws {
        let chains: (MockLLMServer) -> [String: FallbackChain] = { server in
            var provider = Provider("anthropic", model: "claude-test", apiKey: secretKey, baseURL: server.baseURL, maxRetries: 0)
            provider.name = "claude"
            return ["default": FallbackChain([provider])]
        }
        try await withGateway(chains: chains) { server, gateway in
            let answer = try await gateway.send(.POST, "/v1/chat/completions", body: Self.richBody)
            #expect(answer.status == 200, "\(answer.body)")
            let dropped = try #require(answer.headers.first(name: "x-llm-fallback-dropped-params"))
            let names = Set(dropped.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) })
            #expect(names == [
                "frequency_penalty", "presence_penalty", "logprobs", "top_logprobs", "logit_bias", "metadata", "store",
                "service_tier", "prediction", "a_field_of_the_future",
            ])
            let sent = try #require(server.requests(for: "claude-test").last)
            let upstream = try #require(try JSONValue(parsing: Data(sent.body)).members)
            // reasoning_effort high: extended thinking, with max_tokens above the budget.
            #expect(upstream["thinking"] == ["type": "enabled", "budget_tokens": 24576])
            #expect((upstream["max_tokens"]?.intValue ?? 0) > 24576)
            // Anthropic's metadata takes only user_id: the client's {"k":"v"} is not forwarded.
            #expect(upstream["metadata"] == nil)
            #expect(upstream["logit_bias"] == nil)
        }
    }

    @Test("the answer of an OpenAI provider reaches the client with what the chat model does not hold")
    func responseFidelity() async throws {
        try await withGateway(chains: { ["default": mockChain(on: $0)] }) { server, gateway in
            let body = #"""
                {"id":"chatcmpl-9","object":"chat.completion","created":1,"model":"model-primary","system_fingerprint":"fp_44",
                 "service_tier":"flex","choices":[{"index":0,"message":{"role":"assistant","content":"Hi","refusal":null,
                 "annotations":[]},"logprobs":{"content":[{"token":"Hi","logprob":-0.1,"bytes":[72,105],"top_logprobs":[]}]},
                 "finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}}
                """#
            server.script("model-primary", .raw(status: 200, headers: ["content-type": "application/json"], body: body))
            let answer = try await gateway.chat("default")
            #expect(answer.status == 200)
            #expect(answer.json["system_fingerprint"] as? String == "fp_44")
            #expect(answer.json["service_tier"] as? String == "flex")
            let choice = try #require((answer.json["choices"] as? [[String: Any]])?.first)
            let logprobs = try #require(choice["logprobs"] as? [String: Any])
            #expect((logprobs["content"] as? [[String: Any]])?.first?["token"] as? String == "Hi")
            #expect((choice["message"] as? [String: Any])?["content"] as? String == "Hi")
        }
    }

    @Test("a stream of an OpenAI provider reaches the client chunk by chunk, logprobs included")
    func streamFidelity() async throws {
        try await withGateway(chains: { ["default": mockChain(on: $0)] }) { server, gateway in
            let chunks = [
                #"{"id":"c","object":"chat.completion.chunk","created":1,"model":"model-primary","system_fingerprint":"fp_1","choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}"#,
                #"{"id":"c","object":"chat.completion.chunk","created":1,"model":"model-primary","system_fingerprint":"fp_1","choices":[{"index":0,"delta":{"content":"Hel"},"logprobs":{"content":[{"token":"Hel","logprob":-0.5,"bytes":null,"top_logprobs":[]}]},"finish_reason":null}]}"#,
                #"{"id":"c","object":"chat.completion.chunk","created":1,"model":"model-primary","system_fingerprint":"fp_1","choices":[{"index":0,"delta":{"content":"lo"},"logprobs":null,"finish_reason":"stop"}]}"#,
            ]
            let stream = chunks.map { "data: \($0)\n\n" }.joined() + "data: [DONE]\n\n"
            server.script("model-primary", .raw(status: 200, headers: ["content-type": "text/event-stream"], body: stream))
            let answer = try await gateway.chat("default", stream: true)
            #expect(answer.status == 200)
            #expect(answer.events.last == "[DONE]")
            #expect(answer.events.contains(chunks[1]))
            #expect(answer.events.contains(chunks[2]))
            #expect(answer.streamedText == "Hello")
        }
    }

    @Test("a provider's drop_params are not sent to it, and are reported")
    func configuredDrops() async throws {
        let chains: (MockLLMServer) -> [String: FallbackChain] = { server in
            var provider = mockProvider("primary", model: "model-primary", on: server)
            provider.dropParameters = ["store", "service_tier"]
            return ["default": FallbackChain([provider])]
        }
        try await withGateway(chains: chains) { server, gateway in
            let answer = try await gateway.send(.POST, "/v1/chat/completions", body: Self.richBody)
            #expect(answer.status == 200)
            #expect(answer.headers.first(name: "x-llm-fallback-dropped-params") == "store, service_tier")
            let sent = try #require(server.requests(for: "model-primary").last)
            let upstream = try #require(try JSONValue(parsing: Data(sent.body)).members)
            #expect(upstream["store"] == nil)
            #expect(upstream["service_tier"] == nil)
            #expect(upstream["metadata"] == ["k": "v"])
        }
    }

    @Test("a failover from OpenAI to Anthropic answers (no 400 for what the backup cannot take)")
    func failoverAcrossFormats() async throws {
        let chains: (MockLLMServer) -> [String: FallbackChain] = { server in
            var claude = Provider("anthropic", model: "claude-test", apiKey: secretKey, baseURL: server.baseURL, maxRetries: 0)
            claude.name = "claude"
            return ["default": FallbackChain([mockProvider("primary", model: "model-primary", on: server), claude])]
        }
        try await withGateway(chains: chains) { server, gateway in
            server.script("model-primary", .status(503))
            server.script("claude-test", .text("from claude"))
            let answer = try await gateway.send(.POST, "/v1/chat/completions", body: Self.richBody)
            #expect(answer.status == 200, "\(answer.body)")
            #expect(((answer.json["choices"] as? [[String: Any]])?.first?["message"] as? [String: Any])?["content"] as? String == "from claude")
            #expect(answer.headers.first(name: "x-llm-fallback-dropped-params")?.contains("logit_bias") == true)
        }
    }

    @Test("a Gemini 3 thought signature travels in the tool call id the client echoes, back to Gemini only")
    func geminiSignatureThroughTheGateway() async throws {
        let chains: (MockLLMServer) -> [String: FallbackChain] = { server in
            ["default": FallbackChain([Provider("google", model: "gemini-3-pro-preview", apiKey: secretKey, baseURL: server.baseURL, maxRetries: 0)])]
        }
        try await withGateway(chains: chains) { server, gateway in
            let answer = #"""
                {"candidates":[{"content":{"role":"model","parts":[{"functionCall":{"name":"lookup","args":{"q":"cat"}},
                 "thoughtSignature":"SIG-9"}]},"finishReason":"STOP","index":0}]}
                """#
            server.script("gemini-3-pro-preview", .raw(status: 200, headers: ["content-type": "application/json"], body: answer))
            let tools = #"[{"type":"function","function":{"name":"lookup","parameters":{"type":"object","properties":{"q":{"type":"string"}}}}}]"#
            let first = try await gateway.send(
                .POST, "/v1/chat/completions",
                body: #"{"model":"default","messages":[{"role":"user","content":"find"}],"tools":\#(tools)}"#)
            #expect(first.status == 200, "\(first.body)")
            let message = try #require((first.json["choices"] as? [[String: Any]])?.first?["message"] as? [String: Any])
            let call = try #require((message["tool_calls"] as? [[String: Any]])?.first)
            let id = try #require(call["id"] as? String)
            #expect(id.hasPrefix("call_0"))
            #expect(!id.contains("SIG-9"))
            server.script("gemini-3-pro-preview", .text("a cat"))
            let followUp = #"""
                {"model":"default","tools":\#(tools),"messages":[{"role":"user","content":"find"},
                 {"role":"assistant","content":null,"tool_calls":[{"id":"\#(id)","type":"function","function":{"name":"lookup","arguments":"{\"q\":\"cat\"}"}}]},
                 {"role":"tool","tool_call_id":"\#(id)","content":"found"}]}
                """#
            let second = try await gateway.send(.POST, "/v1/chat/completions", body: followUp)
            #expect(second.status == 200, "\(second.body)")
            let sent = try #require(server.requests(for: "gemini-3-pro-preview").last)
            let contents = try #require(try JSONValue(parsing: Data(sent.body))["contents"]?.arrayValue)
            #expect(contents[1]["parts"]?.arrayValue?.first?["thoughtSignature"] == "SIG-9")
        }
    }

    @Test("strict parameters: a provider that cannot take them is skipped; when none can, a 400 names them")
    func strictParameters() async throws {
        let chains: (MockLLMServer) -> [String: FallbackChain] = { server in
            var claude = Provider("anthropic", model: "claude-test", apiKey: secretKey, baseURL: server.baseURL, maxRetries: 0)
            claude.name = "claude"
            var strict = FallbackChain.Configuration()
            strict.strictParameters = true
            return [
                "mixed": FallbackChain([claude, mockProvider("primary", model: "model-primary", on: server)], configuration: strict),
                "claude-only": FallbackChain([claude], configuration: strict),
            ]
        }
        try await withGateway(chains: chains) { server, gateway in
            let body = #"{"model":"mixed","messages":[{"role":"user","content":"Hi"}],"logit_bias":{"1":5}}"#
            let mixed = try await gateway.send(.POST, "/v1/chat/completions", body: body)
            #expect(mixed.status == 200)
            #expect(mixed.headers.first(name: "x-llm-fallback-provider") == "primary")
            #expect(server.requests(for: "claude-test").isEmpty)
            let refused = try await gateway.send(.POST, "/v1/chat/completions", body: body.replacingOccurrences(of: "mixed", with: "claude-only"))
            #expect(refused.status == 400, "\(refused.body)")
            #expect(refused.errorMessage.contains("logit_bias"))
            #expect(server.requests(for: "claude-test").isEmpty)
            // Without the parameter, the same chain answers.
            let plain = try await gateway.chat("claude-only")
            #expect(plain.status == 200)
        }
    }

    @Test("a chunk whose data came in several data: lines is relayed as one well-framed event")
    func multiLineDataIsReframed() async throws {
        try await withGateway(chains: { ["default": mockChain(on: $0)] }) { server, gateway in
            // Legal SSE: the data lines are joined with a line feed, which is JSON whitespace here.
            let stream = "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"choices\":\ndata: [{\"index\":0,\"delta\":{\"content\":\"Hi\"},\"finish_reason\":\"stop\"}]}\n\n"
                + "data: [DONE]\n\n"
            server.script("model-primary", .raw(status: 200, headers: ["content-type": "text/event-stream"], body: stream))
            let answer = try await gateway.chat("default", stream: true)
            #expect(answer.status == 200)
            #expect(answer.streamedText == "Hi")
            #expect(answer.events.last == "[DONE]")
            // Every line of the body is a field, a blank line or nothing: no bare JSON line.
            for line in answer.body.split(separator: "\n", omittingEmptySubsequences: true) {
                #expect(line.hasPrefix("data: "), "\(line)")
            }
        }
    }

    @Test("a tool call id carrying Gemini state reaches an OpenAI provider as the plain id, state left behind")
    func passthroughStripsProviderState() async throws {
        try await withGateway(chains: { ["default": mockChain(on: $0)] }) { server, gateway in
            let id = ProviderState.encodedID("call_0", state: ProviderState(origin: "gemini:gemini-3-pro-preview", value: "SIG-SECRET"))
            let body = #"""
                {"model":"default","logit_bias":{"1":2},"messages":[{"role":"user","content":"find"},
                 {"role":"assistant","content":null,"tool_calls":[{"id":"\#(id)","type":"function","function":{"name":"lookup","arguments":"{}"}}]},
                 {"role":"tool","tool_call_id":"\#(id)","content":"found"}]}
                """#
            let answer = try await gateway.send(.POST, "/v1/chat/completions", body: body)
            #expect(answer.status == 200, "\(answer.body)")
            let sent = try #require(server.requests(for: "model-primary").last)
            let text = String(decoding: sent.body, as: UTF8.self)
            #expect(!text.contains("SIG") && !text.contains("_lfs1_"), "\(text)")
            #expect(text.contains(#""tool_call_id":"call_0""#))
            // The rest of the client's body still passes through.
            #expect(text.contains(#""logit_bias":{"1":2}"#))
        }
    }
}
