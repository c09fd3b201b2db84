import Foundation
import NIOCore
import NIOHTTP1
import Testing

@testable import LLMFallback

@Suite struct OpenAIAdapterTests {
    let openai = try! Provider("openai", model: "gpt-4o", apiKey: "sk-test-secret").resolved()
    let groq = try! Provider("groq", model: "llama-3.1-8b", apiKey: "gsk-test").resolved()

    func body(_ parts: HTTPRequestParts) throws -> JSONValue {
        try JSONValue(parsing: String(buffer: parts.body ?? ByteBuffer()))
    }

    @Test func encodesAFullRequest() throws {
        let weather = Tool(name: "get_weather", description: "Weather", parameters: ["type": "object", "properties": ["city": ["type": "string"]]])
        let request = ChatRequest(
            messages: [
                .system("Be brief."),
                .user([.text("What is this?"), .image(.url("https://x/cat.png", detail: "low")), .image(.base64("AAAA", mediaType: "image/png"))]),
                .assistant("", toolCalls: [ToolCall(id: "call_1", name: "get_weather", arguments: "{\"city\":\"Paris\"}")]),
                .tool(callID: "call_1", content: "sunny"),
            ],
            temperature: 0.5,
            topP: 0.9,
            maxTokens: 100,
            stop: ["END"],
            tools: [weather],
            toolChoice: .tool("get_weather"),
            responseFormat: .jsonSchema(name: "answer", schema: ["type": "object"], strict: true),
            seed: 42,
            user: "u1"
        )
        let parts = try OpenAIAdapter().makeRequest(request, for: openai, stream: false)
        #expect(parts.url == "https://api.openai.com/v1/chat/completions")
        #expect(parts.headers.first(name: "authorization") == "Bearer sk-test-secret")
        #expect(parts.headers.first(name: "content-type") == "application/json")
        let expected: JSONValue = [
            "model": "gpt-4o",
            "messages": [
                ["role": "system", "content": "Be brief."],
                [
                    "role": "user",
                    "content": [
                        ["type": "text", "text": "What is this?"],
                        ["type": "image_url", "image_url": ["url": "https://x/cat.png", "detail": "low"]],
                        ["type": "image_url", "image_url": ["url": "data:image/png;base64,AAAA"]],
                    ],
                ],
                [
                    "role": "assistant", "content": nil,
                    "tool_calls": [["id": "call_1", "type": "function", "function": ["name": "get_weather", "arguments": "{\"city\":\"Paris\"}"]]],
                ],
                ["role": "tool", "content": "sunny", "tool_call_id": "call_1"],
            ],
            "temperature": 0.5,
            "top_p": 0.9,
            "max_completion_tokens": 100,
            "stop": ["END"],
            "tools": [["type": "function", "function": ["name": "get_weather", "description": "Weather", "parameters": ["type": "object", "properties": ["city": ["type": "string"]]]]]],
            "tool_choice": ["type": "function", "function": ["name": "get_weather"]],
            "response_format": ["type": "json_schema", "json_schema": ["name": "answer", "schema": ["type": "object"], "strict": true]],
            "seed": 42,
            "user": "u1",
        ]
        let sent = try body(parts)
        #expect(sent == expected, "\(sent) != \(expected)")
    }

    @Test func compatibleServersGetMaxTokensAndStreamOptions() throws {
        let parts = try OpenAIAdapter().makeRequest(ChatRequest(messages: [.user("hi")], maxTokens: 5), for: groq, stream: true)
        #expect(parts.url == "https://api.groq.com/openai/v1/chat/completions")
        let json = try body(parts)
        #expect(json["max_tokens"] == 5)
        #expect(json["max_completion_tokens"] == nil)
        #expect(json["stream"] == true)
        #expect(json["stream_options"] == ["include_usage": true])
    }

    @Test func azureUsesDeploymentURLAndApiKeyHeader() throws {
        var provider = Provider("azure", model: "my-gpt4o", apiKey: "az-key", baseURL: "https://res.openai.azure.com/")
        provider.apiVersion = "2024-06-01"
        let parts = try OpenAIAdapter(azure: true).makeRequest(ChatRequest(messages: [.user("hi")]), for: provider.resolved(), stream: false)
        #expect(parts.url == "https://res.openai.azure.com/openai/deployments/my-gpt4o/chat/completions?api-version=2024-06-01")
        #expect(parts.headers.first(name: "api-key") == "az-key")
        #expect(parts.headers.first(name: "authorization") == nil)
        #expect(try body(parts)["model"] == nil)
    }

    @Test func decodesTextToolCallsAndUsage() throws {
        let json = """
            {"id":"chatcmpl-1","object":"chat.completion","model":"gpt-4o-2024-08-06","choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[{"id":"call_9","type":"function","function":{"name":"get_weather","arguments":"{\\"city\\":\\"Paris\\"}"}}]},"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":12,"completion_tokens":7,"total_tokens":19,"prompt_tokens_details":{"cached_tokens":4},"completion_tokens_details":{"reasoning_tokens":2}}}
            """
        let response = try OpenAIAdapter().decodeResponse(ByteBuffer(string: json), headers: [:], for: openai)
        #expect(response.content == "")
        #expect(response.toolCalls == [ToolCall(id: "call_9", name: "get_weather", arguments: "{\"city\":\"Paris\"}")])
        #expect(response.toolCalls.first?.parsedArguments == ["city": "Paris"])
        #expect(response.finishReason == .toolCalls)
        #expect(response.usage == Usage(promptTokens: 12, completionTokens: 7, totalTokens: 19, cachedTokens: 4, reasoningTokens: 2))
        #expect(response.model == "gpt-4o-2024-08-06")
        #expect(response.id == "chatcmpl-1")
        #expect(response.rawJSON?["object"] == "chat.completion")
    }

    @Test(arguments: [
        ("stop", FinishReason.stop), ("length", .length), ("content_filter", .contentFilter), ("weird", .other("weird")),
    ])
    func finishReasons(_ raw: String, _ expected: FinishReason) throws {
        let json = #"{"choices":[{"message":{"content":"x"},"finish_reason":"\#(raw)"}]}"#
        #expect(try OpenAIAdapter().decodeResponse(ByteBuffer(string: json), headers: [:], for: openai).finishReason == expected)
    }

    @Test(arguments: ["", "not json", "{}", #"{"choices":[]}"#, #"{"choices":[{"index":0}]}"#, #"{"choices":"x"}"#, "[1,2]"])
    func malformedBodiesAreInvalidResponses(_ text: String) {
        #expect {
            try OpenAIAdapter().decodeResponse(ByteBuffer(string: text), headers: [:], for: openai)
        } throws: { error in
            (error as? ProviderError)?.kind == .invalidResponse
        }
    }

    @Test func classifiesErrors() {
        let adapter = OpenAIAdapter()
        func classify(_ status: Int, _ body: String, _ headers: HTTPHeaders = [:]) -> ProviderError {
            adapter.classifyError(status: status, headers: headers, body: ByteBuffer(string: body))
        }
        let rateLimited = classify(429, #"{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}"#, ["retry-after": "2", "x-request-id": "req_1"])
        #expect(rateLimited.kind == .rateLimited)
        #expect(rateLimited.retryAfter == .seconds(2))
        #expect(rateLimited.isTransient)
        #expect(rateLimited.requestID == "req_1")
        let quota = classify(429, #"{"error":{"message":"You exceeded your current quota","type":"insufficient_quota","code":"insufficient_quota"}}"#)
        #expect(quota.kind == .rateLimited)
        #expect(!quota.isTransient)
        #expect(classify(429, "{}", ["retry-after-ms": "1500"]).retryAfter == .milliseconds(1500))
        #expect(classify(401, #"{"error":{"message":"Incorrect API key","type":"invalid_request_error","code":"invalid_api_key"}}"#).kind == .authentication)
        #expect(classify(403, #"{"error":{"message":"no access"}}"#).kind == .permissionDenied)
        #expect(classify(404, #"{"error":{"message":"model not found","code":"model_not_found"}}"#).kind == .notFound)
        #expect(
            classify(400, #"{"error":{"message":"This model's maximum context length is 8192 tokens","type":"invalid_request_error","code":"context_length_exceeded"}}"#).kind
                == .contextLengthExceeded
        )
        #expect(classify(400, #"{"error":{"message":"filtered","code":"content_filter"}}"#).kind == .contentFiltered)
        #expect(classify(400, #"{"error":{"message":"bad","type":"invalid_request_error"}}"#).kind == .invalidRequest)
        #expect(classify(500, #"{"error":{"message":"boom","type":"server_error"}}"#).kind == .serverError)
        #expect(classify(503, "<html>unavailable</html>").kind == .overloaded)
        #expect(classify(502, "").kind == .serverError)
        #expect(classify(504, "").kind == .timeout)
    }

    @Test func retryAfterAsHTTPDate() {
        let now = Date(timeIntervalSince1970: 1_700_000_000)
        let later = ErrorClassifier.parseHTTPDate("Tue, 14 Nov 2023 22:13:50 GMT")!
        #expect(later.timeIntervalSince1970 == 1_700_000_030)
        #expect(ErrorClassifier.retryAfter(from: ["retry-after": "Tue, 14 Nov 2023 22:13:50 GMT"], now: now) == .seconds(30))
        #expect(ErrorClassifier.retryAfter(from: ["retry-after": "soon"], now: now) == nil)
    }

    func decodeStream(_ text: String, splitEveryByte: Bool) throws -> (chunks: [ChatChunk], complete: Bool) {
        var parser = ServerSentEventParser()
        var decoder = OpenAIAdapter().makeStreamDecoder(for: openai)
        var chunks: [ChatChunk] = []
        var events: [ServerSentEvent] = []
        let bytes = Array(text.utf8)
        let pieces: [ArraySlice<UInt8>] = splitEveryByte ? bytes.indices.map { bytes[$0...$0] } : [bytes[...]]
        for piece in pieces {
            events.removeAll()
            try parser.feed(piece, into: &events)
            for event in events {
                if let chunk = try decoder.decode(event) { chunks.append(chunk) }
            }
        }
        return (chunks, decoder.isComplete)
    }

    @Test(arguments: [false, true])
    func decodesAStreamWithToolCallsAndUsage(splitEveryByte: Bool) throws {
        let text = """
            data: {"id":"c1","model":"gpt-4o","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}

            data: {"id":"c1","model":"gpt-4o","choices":[{"index":0,"delta":{"content":"Héllo"},"finish_reason":null}]}

            data: {"id":"c1","model":"gpt-4o","choices":[{"index":0,"delta":{"content":" wörld"},"finish_reason":null}]}

            data: {"id":"c1","model":"gpt-4o","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"f","arguments":""}}]},"finish_reason":null}]}

            data: {"id":"c1","model":"gpt-4o","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\\"a\\":"}}]},"finish_reason":null}]}

            data: {"id":"c1","model":"gpt-4o","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"1}"}}]},"finish_reason":null}]}

            data: {"id":"c1","model":"gpt-4o","choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}

            data: {"id":"c1","model":"gpt-4o","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":4,"total_tokens":7}}

            data: [DONE]


            """
        let (chunks, complete) = try decodeStream(text, splitEveryByte: splitEveryByte)
        #expect(complete)
        #expect(chunks.map(\.content).joined() == "Héllo wörld")
        let arguments = chunks.flatMap(\.toolCallDeltas).filter { $0.index == 0 }.map(\.arguments).joined()
        #expect(arguments == #"{"a":1}"#)
        #expect(chunks.flatMap(\.toolCallDeltas).first?.name == "f")
        #expect(chunks.compactMap(\.finishReason) == [.toolCalls])
        #expect(chunks.compactMap(\.usage) == [Usage(promptTokens: 3, completionTokens: 4)])
    }

    @Test func errorInsideAStream() throws {
        let text = "data: {\"error\":{\"message\":\"overloaded\",\"type\":\"server_error\"}}\n\n"
        #expect(throws: ProviderError.self) { try decodeStream(text, splitEveryByte: false) }
        do {
            _ = try decodeStream(text, splitEveryByte: false)
        } catch let error as ProviderError {
            #expect(error.kind == .serverError)
        }
    }

    @Test func malformedChunk() {
        #expect {
            try decodeStream("data: {not json\n\n", splitEveryByte: false)
        } throws: { error in
            (error as? ProviderError)?.kind == .invalidResponse
        }
    }
}

@Suite struct ProviderTests {
    @Test func unknownKindWithoutBaseURLIsAConfigurationError() {
        #expect {
            try Provider("nonesuch", model: "m", apiKey: "k").resolved()
        } throws: { error in
            guard let error = error as? ProviderError else { return false }
            return error.kind == .misconfigured && error.message.contains("nonesuch")
        }
    }

    @Test func unknownKindWithBaseURLIsOpenAICompatible() throws {
        let resolved = try Provider("my-server", model: "m", baseURL: "http://gpu:8000/v1/").resolved(environment: [:])
        #expect(resolved.kind.wireFormat == .openAI)
        #expect(resolved.baseURL == "http://gpu:8000/v1")
        #expect(resolved.apiKey == nil)
    }

    @Test func keysComeFromTheEnvironment() throws {
        let resolved = try Provider("anthropic", model: "claude").resolved(environment: ["ANTHROPIC_API_KEY": "sk-ant-env"])
        #expect(resolved.apiKey == "sk-ant-env")
        let gemini = try Provider("gemini", model: "gemini-2.0-flash").resolved(environment: ["GOOGLE_API_KEY": "g"])
        #expect(gemini.kind.wireFormat == .gemini)
        #expect(gemini.apiKey == "g")
        #expect(throws: ProviderError.self) { try Provider("openai", model: "gpt-4o").resolved(environment: [:]) }
    }

    @Test(arguments: ["groq", "together", "mistral", "deepseek", "openrouter", "fireworks", "xai", "ollama", "vllm", "lmstudio"])
    func knownVendors(_ name: String) throws {
        let kind = try #require(ProviderKind.named(name))
        #expect(kind.wireFormat == .openAI)
        #expect(kind.defaultBaseURL?.hasPrefix("http") == true)
        let local = ["ollama", "vllm", "lmstudio"].contains(name)
        #expect(kind.requiresAPIKey == !local)
        if local { _ = try Provider(name, model: "m").resolved(environment: [:]) }
    }

    @Test func descriptionsNeverShowTheKey() {
        let provider = Provider("openai", model: "gpt-4o", apiKey: "sk-very-secret-key")
        #expect(!"\(provider)".contains("sk-very"))
        #expect(!String(reflecting: provider).contains("sk-very"))
        #expect("\(provider)" == "openai/gpt-4o")
        var dumped = ""
        dump(provider, to: &dumped)
        #expect(!dumped.contains("sk-very"))
    }
}
