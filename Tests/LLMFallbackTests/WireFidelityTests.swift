import Foundation
import LLMFallbackTesting
import NIOCore
import Testing

@testable import LLMFallback

/// One JSON toolkit with one set of rules, and the neutral model's new parameters mapped per format (issue 14).
@Suite struct JSONToolkitTests {
    @Test func objectsKeepTheirOrder() throws {
        let text = #"{"zeta":1,"alpha":{"y":true,"b":null},"mid":[{"q":1,"a":2}]}"#
        let value = try JSONValue(parsing: text)
        #expect(value.jsonString == text)
        #expect(value.members?.keys == ["zeta", "alpha", "mid"])
        let literal: JSONValue = ["zeta": 1, "alpha": ["y": true, "b": nil], "mid": [["q": 1, "a": 2]]]
        #expect(literal == value)
        #expect(literal.jsonString == text)
    }

    @Test func equalityIsOrderSensitiveAndObjectValueStillADictionary() throws {
        let ab = try JSONValue(parsing: #"{"a":1,"b":2}"#)
        let ba = try JSONValue(parsing: #"{"b":2,"a":1}"#)
        #expect(ab != ba)
        #expect(ab.objectValue == ba.objectValue)
    }

    @Test func settingAnExistingKeyReplacesInPlaceAndRemovingKeepsTheRest() {
        var object: JSONObject = ["a": 1, "b": 2, "c": 3]
        object["b"] = "two"
        object["d"] = 4
        #expect(object.keys == ["a", "b", "c", "d"])
        #expect(object["b"] == "two")
        object["a"] = nil
        #expect(object.keys == ["b", "c", "d"])
        #expect(object.removeValue(forKey: "c") == 3)
        #expect(object.keys == ["b", "d"])
        // Large objects are indexed; the index follows removals.
        var large = JSONObject((0..<100).map { ("k\($0)", JSONValue.int($0)) })
        large["k50"] = nil
        #expect(large["k51"] == 51)
        #expect(large["k50"] == nil)
        #expect(large.count == 99)
        large["k50"] = 500
        #expect(large.keys.last == "k50")
    }

    @Test(arguments: [#"{"a":1,"a":2}"#, #"{"x":{"b":1,"b":1}}"#, #"[{"k":1,"j":2,"k":3}]"#])
    func aRepeatedKeyIsRefused(_ text: String) {
        #expect(throws: JSONSyntaxError.self) { try JSONValue(parsing: text) }
        do {
            _ = try JSONValue(parsing: text)
        } catch {
            #expect(error.duplicateKey != nil)
        }
    }

    @Test(arguments: [
        "12345678901234567890", "-98765432109876543210", "3.14159265358979323846", "1e400", "0.1000000000000000055511151231257827",
    ])
    func numbersKeepTheirExactValue(_ text: String) throws {
        let value = try JSONValue(parsing: "[\(text)]")
        #expect(value == [.number(text)])
        #expect(value.jsonString == "[\(text)]")
    }

    @Test(arguments: [("1", JSONValue.int(1)), ("-0", .int(0)), ("2.5", .double(2.5)), ("1e3", .double(1000)), ("0.1", .double(0.1))])
    func ordinaryNumbersAreIntsAndDoubles(_ pair: (String, JSONValue)) throws {
        #expect(try JSONValue(parsing: pair.0) == pair.1)
    }

    @Test func aNumberThatIsNotJSONIsNeverWritten() {
        #expect(JSONValue.array([.number("0x10"), .number("1e5")]).jsonString == "[null,1e5]")
        var buffer = ByteBuffer()
        #expect(throws: NonFiniteNumber.self) { try buffer.writeJSONValue(.number("NaN")) }
    }
}

@Suite struct NeutralParameterMappingTests {
    static func body(_ kind: String, model: String, _ request: ChatRequest) throws -> JSONObject {
        let resolved = try Provider(kind, model: model, apiKey: "test-key").resolved()
        let parts = try resolved.kind.wireFormat.adapter.makeRequest(request, for: resolved, stream: false)
        let bytes = try #require(parts.body)
        return try #require(try JSONValue(parsing: String(buffer: bytes)).members)
    }

    static let request = ChatRequest(
        messages: [.user("Hi")], temperature: 0.3, seed: 9, reasoningEffort: .medium, frequencyPenalty: 0.5,
        presencePenalty: 0.25, logprobs: true, topLogprobs: 2)

    @Test func openAIGetsEveryParameterByItsName() throws {
        let body = try Self.body("openai", model: "o4-mini", Self.request)
        #expect(body["reasoning_effort"] == "medium")
        #expect(body["frequency_penalty"] == 0.5)
        #expect(body["presence_penalty"] == 0.25)
        #expect(body["logprobs"] == true)
        #expect(body["top_logprobs"] == 2)
    }

    @Test func geminiGetsPenaltiesLogprobsAndAThinkingBudgetOrLevel() throws {
        let config = try #require(try Self.body("google", model: "gemini-2.5-flash", Self.request)["generationConfig"]?.members)
        #expect(config["presencePenalty"] == 0.25)
        #expect(config["frequencyPenalty"] == 0.5)
        #expect(config["responseLogprobs"] == true)
        #expect(config["logprobs"] == 2)
        #expect(config["thinkingConfig"] == ["thinkingBudget": 8192])
        let three = try #require(try Self.body("google", model: "gemini-3-pro-preview", Self.request)["generationConfig"]?.members)
        #expect(three["thinkingConfig"] == ["thinkingLevel": "high"])
    }

    @Test func anthropicThinksAndReportsWhatItCannotTake() throws {
        let body = try Self.body("anthropic", model: "claude-sonnet-4-5", Self.request)
        #expect(body["thinking"] == ["type": "enabled", "budget_tokens": 8192])
        #expect((body["max_tokens"]?.intValue ?? 0) > 8192)
        #expect(body["temperature"] == nil)
        let resolved = try Provider("anthropic", model: "claude-sonnet-4-5", apiKey: "test-key").resolved()
        let dropped = AnthropicAdapter().droppedParameters(in: Self.request, for: resolved)
        #expect(Set(dropped) == ["seed", "frequency_penalty", "presence_penalty", "logprobs", "top_logprobs", "temperature"])
    }

    @Test func extraBodyReachesOnlyItsFormat() throws {
        var request = ChatRequest(messages: [.user("Hi")])
        request.extraBody = [.anthropic: ["top_k": 40], .openAI: ["service_tier": "flex"], .gemini: ["cachedContent": "c/1"]]
        #expect(try Self.body("anthropic", model: "claude", request)["top_k"] == 40)
        #expect(try Self.body("anthropic", model: "claude", request)["service_tier"] == nil)
        #expect(try Self.body("openai", model: "gpt-4o", request)["service_tier"] == "flex")
        #expect(try Self.body("openai", model: "gpt-4o", request)["top_k"] == nil)
        #expect(try Self.body("google", model: "gemini-2.5-flash", request)["cachedContent"] == "c/1")
    }

    @Test func toolSchemasKeepTheirOrderInEveryFormat() throws {
        let schema = try JSONValue(parsing: #"{"type":"object","properties":{"zeta":{"type":"string"},"alpha":{"type":"number"}},"required":["zeta"]}"#)
        let request = ChatRequest(
            messages: [.user("Hi")], tools: [Tool(name: "t", parameters: schema)],
            responseFormat: .jsonSchema(name: "s", schema: schema))
        for (kind, path) in [("openai", ["tools", "function", "parameters"]), ("anthropic", ["tools", "input_schema"])] {
            let body = try Self.body(kind, model: "m", request)
            var value: JSONValue = .object(body)
            for key in path { value = (value.arrayValue?.first ?? value)[key] ?? .null }
            #expect(value["properties"]?.members?.keys == ["zeta", "alpha"], "\(kind)")
        }
        let gemini = try Self.body("google", model: "gemini-2.5-flash", request)
        #expect(gemini["generationConfig"]?["responseSchema"]?["properties"]?.members?.keys == ["zeta", "alpha"])
    }
}

@Suite struct PassthroughWritingTests {
    static let clientBody = #"{"model":"chain","messages":[{"role":"user","content":"Hi","x_future":1}],"store":true,"max_completion_tokens":9,"stream":false}"#

    static func request() throws -> ChatRequest {
        let members = try #require(try JSONValue(parsing: clientBody).members)
        var request = ChatRequest(messages: [.user("Hi")], maxTokens: 9)
        request.passthrough = PassthroughBody(format: .openAI, body: members, unmodelledKeys: ["store"], messageCount: 1)
        return request
    }

    static func sent(_ request: ChatRequest, to provider: ResolvedProvider, stream: Bool = false) throws -> JSONObject {
        let parts = try provider.kind.wireFormat.adapter.makeRequest(request, for: provider, stream: stream)
        let bytes = try #require(parts.body)
        return try #require(try JSONValue(parsing: String(buffer: bytes)).members)
    }

    @Test func messagesTheChainAppendsFollowTheClientsOwn() throws {
        var request = try Self.request()
        request.messages.append(.assistant("Hel"))  // a continuation's prefill
        let body = try Self.sent(request, to: try Provider("groq", model: "llama", apiKey: "k").resolved())
        let messages = try #require(body["messages"]?.arrayValue)
        #expect(messages.count == 2)
        #expect(messages[0] == ["role": "user", "content": "Hi", "x_future": 1])
        #expect(messages[1]["role"] == "assistant" && messages[1]["content"] == "Hel")
        #expect(body["max_tokens"] == 9 && body["max_completion_tokens"] == nil)
        #expect(body["store"] == true)
    }

    @Test func azureGetsNoModelAndAStreamGetsUsage() throws {
        var azure = Provider("azure", model: "my-deployment", apiKey: "k", baseURL: "https://x.openai.azure.com")
        azure.name = "azure"
        let body = try Self.sent(try Self.request(), to: try azure.resolved(), stream: true)
        #expect(body["model"] == nil)
        #expect(body["stream"] == true)
        #expect(body["stream_options"] == ["include_usage": true])
        #expect(body.keys.first == "messages")
    }
}

@Suite struct ProviderStateTests {
    @Test func anIDCarriesStateAndGivesItBack() {
        let state = ProviderState(origin: "gemini:gemini-3-pro-preview", value: "CiQB+/=sig")
        let encoded = ProviderState.encodedID("call_0", state: state)
        #expect(encoded.hasPrefix("call_0"))
        #expect(!encoded.contains("+") && !encoded.contains("/") && !encoded.contains("="))
        let decoded = ProviderState.decodeID(encoded)
        #expect(decoded.id == "call_0")
        #expect(decoded.state == state)
        #expect(ProviderState.decodeID("call_plain") == ("call_plain", nil))
        #expect(ProviderState.decodeID("call_lfs1_!!!").state == nil)
        // Anthropic's tool use ids allow only [A-Za-z0-9_-].
        #expect(encoded.unicodeScalars.allSatisfy { CharacterSet.alphanumerics.contains($0) || $0 == "_" || $0 == "-" })
    }

    /// A Gemini 3 tool conversation over two turns: the signature of the first answer's function call reaches
    /// Gemini with the call in the second turn; another provider never sees it.
    @Test func geminiSignaturesSurviveATurnAndGoNowhereElse() async throws {
        try await withServer { server in
            let answer = #"""
                {"candidates":[{"content":{"role":"model","parts":[{"functionCall":{"name":"lookup","args":{"q":"cat"}},
                 "thoughtSignature":"SIG-123"}]},"finishReason":"STOP","index":0}]}
                """#
            server.script("gemini-3-pro-preview", .raw(status: 200, headers: ["content-type": "application/json"], body: answer))
            let gemini = Provider("google", model: "gemini-3-pro-preview", apiKey: "test-key", baseURL: server.baseURL, maxRetries: 0)
            let chain = FallbackChain([gemini], configuration: config())
            let first = try await chain.chat(ChatRequest(messages: [.user("find a cat")], tools: [Tool(name: "lookup")]))
            let call = try #require(first.toolCalls.first)
            #expect(call.providerState?.value == "SIG-123")
            let followUp = ChatRequest(messages: [
                .user("find a cat"), .assistant("", toolCalls: [call]), .tool(callID: call.id, content: "a cat"),
            ])
            server.script("gemini-3-pro-preview", .text("found"))
            _ = try await chain.chat(followUp)
            let sent = try #require(server.requests(for: "gemini-3-pro-preview").last)
            let contents = try #require(try JSONValue(parsing: Data(sent.body))["contents"]?.arrayValue)
            let part = try #require(contents[1]["parts"]?.arrayValue?.first)
            #expect(part["thoughtSignature"] == "SIG-123")
            // To OpenAI, only the id.
            let openAI = try OpenAIAdapter().makeRequest(followUp, for: try Provider("openai", model: "gpt-4o", apiKey: "k").resolved(), stream: false)
            let openAIBody = try #require(openAI.body)
            #expect(!String(buffer: openAIBody).contains("SIG-123"))
            // A call Gemini 3 did not make (another provider's, before a failover) gets the documented bypass.
            var foreign = followUp
            foreign.messages[1].toolCalls[0].providerState = nil
            let bypass = try GeminiAdapter().makeRequest(foreign, for: try gemini.resolved(), stream: false)
            let bypassBody = try #require(bypass.body)
            #expect(String(buffer: bypassBody).contains("skip_thought_signature_validator"))
        }
    }
}
