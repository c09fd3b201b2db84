import Foundation
import Testing
import NIOCore
import NIOHTTP1
@testable import LLMFallback

@Suite("AnthropicAdapter")
struct AnthropicAdapterTests {
    let adapter = AnthropicAdapter()

    // MARK: - Request encoding

    @Test func encodesURLHeadersAndBody() throws {
        var provider = Provider("anthropic", model: "claude-3-5-sonnet-20241022", apiKey: "sk-ant-test")
        provider.headers = ["anthropic-beta": "prompt-caching-2024-07-31"]
        let request = ChatRequest(
            messages: [.system("You are terse."), .user("Hi"), .system("Answer in French.")],
            temperature: 0.5,
            topP: 0.9,
            stop: ["END"],
            seed: 42,
            user: "user-123"
        )
        let parts = try adapter.makeRequest(request, for: try provider.resolved(), stream: false)
        #expect(parts.method == .POST)
        #expect(parts.url == "https://api.anthropic.com/v1/messages")
        #expect(parts.headers.first(name: "x-api-key") == "sk-ant-test")
        #expect(parts.headers.first(name: "anthropic-version") == "2023-06-01")
        #expect(parts.headers.first(name: "content-type") == "application/json")
        #expect(parts.headers.first(name: "anthropic-beta") == "prompt-caching-2024-07-31")
        #expect(parts.headers.first(name: "authorization") == nil)
        let expected: JSONValue = [
            "model": "claude-3-5-sonnet-20241022",
            "max_tokens": 4096,
            "system": "You are terse.\n\nAnswer in French.",
            "messages": [["role": "user", "content": "Hi"]],
            "temperature": 0.5,
            "top_p": 0.9,
            "stop_sequences": ["END"],
            "metadata": ["user_id": "user-123"],
        ]
        #expect(try Self.json(parts) == expected)
    }

    @Test func honoursAPIVersionMaxTokensAndStream() throws {
        var provider = Provider("anthropic", model: "claude-3-5-haiku-latest", apiKey: "k", baseURL: "http://localhost:8080/")
        provider.apiVersion = "2024-01-01"
        let parts = try adapter.makeRequest(ChatRequest(messages: [.user("Hi")], maxTokens: 100), for: try provider.resolved(), stream: true)
        #expect(parts.url == "http://localhost:8080/v1/messages")
        #expect(parts.headers.first(name: "anthropic-version") == "2024-01-01")
        #expect(parts.headers.first(name: "accept") == "text/event-stream")
        let expected: JSONValue = [
            "model": "claude-3-5-haiku-latest",
            "max_tokens": 100,
            "messages": [["role": "user", "content": "Hi"]],
            "stream": true,
        ]
        #expect(try Self.json(parts) == expected)
        #expect(AnthropicAdapter.defaultMaxTokens == 4096)
    }

    @Test func mergesConsecutiveTurnsAndEncodesToolRoundTrip() throws {
        let messages: [Message] = [
            .system("Use tools."),
            .user("Weather in Paris"),
            .user("and the time?"),
            .assistant("Let me check.", toolCalls: [
                ToolCall(id: "toolu_1", name: "get_weather", arguments: #"{"city":"Paris"}"#),
                ToolCall(id: "toolu_2", name: "get_time", arguments: ""),
            ]),
            .tool(callID: "toolu_1", content: "18°C, sunny"),
            .tool(callID: "toolu_2", name: "get_time", content: "14:05"),
            .user("Thanks"),
            .assistant("", toolCalls: [ToolCall(id: "toolu_3", name: "get_weather", arguments: "not json")]),
        ]
        let parts = try adapter.makeRequest(ChatRequest(messages: messages), for: try Self.provider(), stream: false)
        let expected: JSONValue = [
            "model": "claude-3-5-sonnet-20241022",
            "max_tokens": 4096,
            "system": "Use tools.",
            "messages": [
                ["role": "user", "content": [
                    ["type": "text", "text": "Weather in Paris"],
                    ["type": "text", "text": "and the time?"],
                ]],
                ["role": "assistant", "content": [
                    ["type": "text", "text": "Let me check."],
                    ["type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": ["city": "Paris"]],
                    ["type": "tool_use", "id": "toolu_2", "name": "get_time", "input": [:]],
                ]],
                ["role": "user", "content": [
                    ["type": "tool_result", "tool_use_id": "toolu_1", "content": "18°C, sunny"],
                    ["type": "tool_result", "tool_use_id": "toolu_2", "content": "14:05"],
                    ["type": "text", "text": "Thanks"],
                ]],
                ["role": "assistant", "content": [
                    ["type": "tool_use", "id": "toolu_3", "name": "get_weather", "input": [:]],
                ]],
            ],
        ]
        #expect(try Self.json(parts) == expected)
    }

    @Test func encodesToolsAndToolChoice() throws {
        let weather = Tool(
            name: "get_weather",
            description: "Current weather",
            parameters: ["type": "object", "properties": ["city": ["type": "string"]], "required": ["city"]]
        )
        let clock = Tool(name: "get_time")
        func body(_ choice: ToolChoice?, parallel: Bool? = nil, tools: [Tool]) throws -> JSONValue {
            let request = ChatRequest(messages: [.user("Hi")], tools: tools, toolChoice: choice, parallelToolCalls: parallel)
            return try Self.json(try adapter.makeRequest(request, for: try Self.provider(), stream: false))
        }
        let full = try body(.auto, tools: [weather, clock])
        let expectedTools: JSONValue = [
            [
                "name": "get_weather", "description": "Current weather",
                "input_schema": ["type": "object", "properties": ["city": ["type": "string"]], "required": ["city"]],
            ],
            ["name": "get_time", "input_schema": ["type": "object", "properties": [:]]],
        ]
        #expect(full["tools"] == expectedTools)
        #expect(full["tool_choice"] == ["type": "auto"])
        #expect(try body(.required, tools: [weather])["tool_choice"] == ["type": "any"])
        #expect(try body(ToolChoice.none, tools: [weather])["tool_choice"] == ["type": "none"])
        #expect(try body(.tool("get_weather"), tools: [weather])["tool_choice"] == ["type": "tool", "name": "get_weather"])
        #expect(try body(nil, tools: [weather])["tool_choice"] == nil)
        #expect(try body(nil, parallel: false, tools: [weather])["tool_choice"] == ["type": "auto", "disable_parallel_tool_use": true])
        #expect(try body(.required, parallel: false, tools: [weather])["tool_choice"] == ["type": "any", "disable_parallel_tool_use": true])
        #expect(try body(.auto, parallel: true, tools: [weather])["tool_choice"] == ["type": "auto"])
        // Without tools the API rejects tool_choice: neither is sent.
        let bare = try body(.required, parallel: false, tools: [])
        #expect(bare["tools"] == nil)
        #expect(bare["tool_choice"] == nil)
    }

    @Test func encodesImages() throws {
        let message = Message.user([
            .text("What is in these?"),
            .image(.base64("iVBORw0KGgo=", mediaType: "image/png")),
            .image(.url("https://example.com/cat.jpg", detail: "high")),
            .image(.url("data:image/webp;base64,UklGRg==")),
            .image(.url("data:image/svg+xml,%3Csvg%2F%3E")),
        ])
        let parts = try adapter.makeRequest(ChatRequest(messages: [message]), for: try Self.provider(), stream: false)
        let expected: JSONValue = [
            ["role": "user", "content": [
                ["type": "text", "text": "What is in these?"],
                ["type": "image", "source": ["type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="]],
                ["type": "image", "source": ["type": "url", "url": "https://example.com/cat.jpg"]],
                ["type": "image", "source": ["type": "base64", "media_type": "image/webp", "data": "UklGRg=="]],
                ["type": "image", "source": ["type": "base64", "media_type": "image/svg+xml", "data": .string(Data("<svg/>".utf8).base64EncodedString())]],
            ]],
        ]
        #expect(try Self.json(parts)["messages"] == expected)
    }

    @Test func toolResultsWithImagesUseBlocksAndDeveloperIsSystem() throws {
        let messages: [Message] = [
            Message(role: Role(rawValue: "developer"), content: "Be precise."),
            .user("Plot it"),
            .assistant("", toolCalls: [ToolCall(id: "toolu_9", name: "plot", arguments: "{}")]),
            Message(role: .tool, content: .parts([.text("chart:"), .image(.base64("R0lGOD==", mediaType: "image/gif"))]), toolCallID: "toolu_9"),
        ]
        let body = try Self.json(try adapter.makeRequest(ChatRequest(messages: messages), for: try Self.provider(), stream: false))
        #expect(body["system"] == "Be precise.")
        let expected: JSONValue = [
            ["role": "user", "content": "Plot it"],
            ["role": "assistant", "content": [["type": "tool_use", "id": "toolu_9", "name": "plot", "input": [:]]]],
            ["role": "user", "content": [
                ["type": "tool_result", "tool_use_id": "toolu_9", "content": [
                    ["type": "text", "text": "chart:"],
                    ["type": "image", "source": ["type": "base64", "media_type": "image/gif", "data": "R0lGOD=="]],
                ]],
            ]],
        ]
        #expect(body["messages"] == expected)
    }

    @Test func aFailedToolsResultIsSentAsAnError() throws {
        var failed = Message.tool(callID: "toolu_9", content: "ENOENT")
        failed.isError = true
        let messages: [Message] = [.user("Read"), .assistant("", toolCalls: [ToolCall(id: "toolu_9", name: "read", arguments: "{}")]), failed]
        let body = try Self.json(try adapter.makeRequest(ChatRequest(messages: messages), for: try Self.provider(), stream: false))
        let result: JSONValue = ["type": "tool_result", "tool_use_id": "toolu_9", "content": "ENOENT", "is_error": true]
        #expect(body["messages"]?.arrayValue?.last == ["role": "user", "content": [result]])
    }

    @Test func rejectsRequestsItCannotExpress() throws {
        let provider = try Self.provider()
        let badImage = ChatRequest(messages: [.user([.image(.url("data:image/png;base64"))])])
        #expect(throws: ProviderError.self) { try adapter.makeRequest(badImage, for: provider, stream: false) }
        let orphan = ChatRequest(messages: [.user("Hi"), Message(role: .tool, content: "42")])
        let error = #expect(throws: ProviderError.self) { try adapter.makeRequest(orphan, for: provider, stream: false) }
        #expect(error?.kind == .invalidRequest)
        let unknownRole = ChatRequest(messages: [Message(role: Role(rawValue: "critic"), content: "Hmm")])
        #expect(throws: ProviderError.self) { try adapter.makeRequest(unknownRole, for: provider, stream: false) }
    }

    @Test func asksForJSONInTheSystemPrompt() throws {
        let schema: JSONValue = ["type": "object", "properties": ["answer": ["type": "integer"]], "required": ["answer"]]
        let provider = try Self.provider()

        let object = try Self.json(try adapter.makeRequest(
            ChatRequest(messages: [.user("2+2?")], responseFormat: .jsonObject), for: provider, stream: false))
        let objectSystem = try #require(object["system"]?.stringValue)
        #expect(objectSystem.hasPrefix("Respond with only a JSON object"))
        #expect(object["response_format"] == nil)

        let typed = try Self.json(try adapter.makeRequest(
            ChatRequest(messages: [.system("Be exact."), .user("2+2?")], responseFormat: .jsonSchema(name: "sum", schema: schema)),
            for: provider, stream: false))
        let typedSystem = try #require(typed["system"]?.stringValue)
        #expect(typedSystem.hasPrefix("Be exact.\n\nRespond with only a JSON object"))
        #expect(typedSystem.contains(schema.jsonString))
        #expect(typedSystem.contains("\"sum\""))

        let text = try Self.json(try adapter.makeRequest(ChatRequest(messages: [.user("Hi")], responseFormat: .text), for: provider, stream: false))
        #expect(text["system"] == nil)
    }

    // MARK: - Responses

    @Test func decodesTextResponse() throws {
        let body = """
            {"id":"msg_01XFDUDYJgAACzvnptvVoYEL","type":"message","role":"assistant","model":"claude-3-5-sonnet-20241022",
             "content":[{"type":"thinking","thinking":"Hmm.","signature":"abc"},{"type":"text","text":"Hello"},{"type":"text","text":", world"}],
             "stop_reason":"end_turn","stop_sequence":null,
             "usage":{"input_tokens":12,"cache_creation_input_tokens":3,"cache_read_input_tokens":100,"output_tokens":6}}
            """
        let response = try adapter.decodeResponse(ByteBuffer(string: body), headers: [:], for: try Self.provider())
        #expect(response.content == "Hello, world")
        #expect(response.toolCalls.isEmpty)
        #expect(response.finishReason == .stop)
        #expect(response.usage == Usage(promptTokens: 115, completionTokens: 6, cachedTokens: 100))
        #expect(response.id == "msg_01XFDUDYJgAACzvnptvVoYEL")
        #expect(response.model == "claude-3-5-sonnet-20241022")
        #expect(response.provider == "anthropic")
        #expect(response.providerName == "anthropic/claude-3-5-sonnet-20241022")
        #expect(response.rawJSON?["id"] == "msg_01XFDUDYJgAACzvnptvVoYEL")
    }

    @Test func decodesToolUseResponse() throws {
        let body = """
            {"id":"msg_02","type":"message","role":"assistant","model":"claude-3-5-sonnet-20241022",
             "content":[{"type":"text","text":"Checking."},
                        {"type":"tool_use","id":"toolu_01A","name":"get_weather","input":{"unit":"c","city":"Paris"}},
                        {"type":"tool_use","id":"toolu_01B","name":"get_time","input":{}}],
             "stop_reason":"tool_use","usage":{"input_tokens":300,"output_tokens":40}}
            """
        let response = try adapter.decodeResponse(ByteBuffer(string: body), headers: [:], for: try Self.provider())
        #expect(response.content == "Checking.")
        #expect(response.toolCalls == [
            // The input's members in the order the model wrote them.
            ToolCall(id: "toolu_01A", name: "get_weather", arguments: #"{"unit":"c","city":"Paris"}"#),
            ToolCall(id: "toolu_01B", name: "get_time", arguments: "{}"),
        ])
        #expect(response.finishReason == .toolCalls)
        #expect(response.usage == Usage(promptTokens: 300, completionTokens: 40))
    }

    @Test(arguments: [
        ("end_turn", FinishReason.stop), ("stop_sequence", .stop), ("max_tokens", .length), ("tool_use", .toolCalls),
        ("refusal", .contentFilter), ("pause_turn", .other("pause_turn")),
    ])
    func mapsStopReasons(raw: String, expected: FinishReason) throws {
        let body = #"{"id":"m","type":"message","content":[{"type":"text","text":"x"}],"stop_reason":"\#(raw)"}"#
        let response = try adapter.decodeResponse(ByteBuffer(string: body), headers: [:], for: try Self.provider())
        #expect(response.finishReason == expected)
        #expect(response.usage == nil)
        #expect(response.model == "claude-3-5-sonnet-20241022")
    }

    @Test func errorBodyInSuccessfulResponseIsClassified() throws {
        let body = #"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#
        let error = #expect(throws: ProviderError.self) {
            try adapter.decodeResponse(ByteBuffer(string: body), headers: ["request-id": "req_9"], for: try Self.provider())
        }
        #expect(error?.kind == .overloaded)
        #expect(error?.code == "overloaded_error")
        #expect(error?.requestID == "req_9")
    }

    @Test(arguments: [
        "",
        "<html>Bad gateway</html>",
        #"{"id":"msg_1","type":"message","role":"assistant"}"#,
        #"{"id":"msg_1","type":"message","content":"hello"}"#,
        #"{"id":"msg_1","type":"message","content":[{"text":"no type"}]}"#,
        #"{"id":"msg_1","type":"message","content":[{"type":"tool_use","name":"f","input":{}}]}"#,
        #"{"id":"msg_1","type":"message","content":[],"usage":{"input_tokens":"many"}}"#,
        "[1, 2, 3]",
        #"{"content": [{"type": "text", "text": "trunc"#,
    ])
    func malformedBodiesAreInvalidResponses(body: String) throws {
        let error = #expect(throws: ProviderError.self) {
            try adapter.decodeResponse(ByteBuffer(string: body), headers: [:], for: try Self.provider())
        }
        #expect(error?.kind == .invalidResponse)
        #expect(error?.message.isEmpty == false)
    }

    @Test func missingContentIsNamed() throws {
        let error = #expect(throws: ProviderError.self) {
            try adapter.decodeResponse(ByteBuffer(string: #"{"id":"msg_1","type":"message"}"#), headers: [:], for: try Self.provider())
        }
        #expect(error?.message.contains("content") == true)
    }

    // MARK: - Errors

    struct ErrorCase: Sendable, CustomTestStringConvertible {
        let status: Int
        let type: String
        let message: String
        let kind: ProviderError.Kind
        var transient: Bool? = nil
        var testDescription: String { "\(status) \(type)" }
    }

    @Test(arguments: [
        ErrorCase(status: 400, type: "invalid_request_error", message: "messages: roles must alternate", kind: .invalidRequest),
        ErrorCase(status: 400, type: "invalid_request_error", message: "prompt is too long: 208310 tokens > 200000 maximum", kind: .contextLengthExceeded),
        ErrorCase(status: 400, type: "invalid_request_error", message: "Your credit balance is too low to access the Anthropic API.", kind: .rateLimited, transient: false),
        ErrorCase(status: 401, type: "authentication_error", message: "invalid x-api-key", kind: .authentication),
        ErrorCase(status: 402, type: "billing_error", message: "Billing issue", kind: .rateLimited, transient: false),
        ErrorCase(status: 403, type: "permission_error", message: "Your API key does not have permission", kind: .permissionDenied),
        ErrorCase(status: 404, type: "not_found_error", message: "model: claude-9", kind: .notFound),
        ErrorCase(status: 413, type: "request_too_large", message: "Request exceeds the maximum allowed number of bytes.", kind: .invalidRequest),
        ErrorCase(status: 429, type: "rate_limit_error", message: "Number of request tokens has exceeded your per-minute rate limit", kind: .rateLimited, transient: true),
        ErrorCase(status: 500, type: "api_error", message: "Internal server error", kind: .serverError, transient: true),
        ErrorCase(status: 504, type: "timeout_error", message: "Request timed out", kind: .timeout),
        ErrorCase(status: 529, type: "overloaded_error", message: "Overloaded", kind: .overloaded, transient: true),
        ErrorCase(status: 409, type: "conflict_error", message: "Conflict", kind: .serverError),
    ])
    func classifiesErrorBodies(_ testCase: ErrorCase) {
        let body = #"{"type":"error","error":{"type":"\#(testCase.type)","message":"\#(testCase.message)"},"request_id":"req_body"}"#
        let headers: HTTPHeaders = ["request-id": "req_011CSHoEeqs5C35K2UUqR7Fy", "content-type": "application/json"]
        let error = adapter.classifyError(status: testCase.status, headers: headers, body: ByteBuffer(string: body))
        #expect(error.kind == testCase.kind)
        #expect(error.status == testCase.status)
        #expect(error.code == testCase.type)
        #expect(error.message == testCase.message)
        #expect(error.requestID == "req_011CSHoEeqs5C35K2UUqR7Fy")
        if let transient = testCase.transient { #expect(error.isTransient == transient) }
    }

    @Test func readsRetryAfterHeaders() {
        let body = ByteBuffer(string: #"{"type":"error","error":{"type":"rate_limit_error","message":"slow down"}}"#)
        let seconds = adapter.classifyError(status: 429, headers: ["retry-after": "30"], body: body)
        #expect(seconds.retryAfter == .seconds(30))
        let milliseconds = adapter.classifyError(status: 429, headers: ["retry-after-ms": "1500", "retry-after": "2"], body: body)
        #expect(milliseconds.retryAfter == .milliseconds(1500))
        let none = adapter.classifyError(status: 429, headers: [:], body: body)
        #expect(none.retryAfter == nil)
        #expect(none.isTransient)
    }

    @Test func spendLimitIsNotTransient() {
        let body = ByteBuffer(string: """
            {"type":"error","error":{"type":"rate_limit_error","message":"You have reached your specified API usage limits.",
             "details":{"error_code":"enforced_spend_limit_reached"}}}
            """)
        let error = adapter.classifyError(status: 429, headers: [:], body: body)
        #expect(error.kind == .rateLimited)
        #expect(!error.isTransient)
    }

    @Test func requestIDFallsBackToTheBody() {
        let body = ByteBuffer(string: #"{"type":"error","error":{"type":"api_error","message":"boom"},"request_id":"req_body"}"#)
        #expect(adapter.classifyError(status: 500, headers: [:], body: body).requestID == "req_body")
    }

    @Test(arguments: [
        (502, "<html><body>Bad Gateway</body></html>", ProviderError.Kind.serverError),
        (503, "", .overloaded),
        (529, "upstream overloaded", .overloaded),
        (429, "Too Many Requests", .rateLimited),
        (400, "prompt is too long", .contextLengthExceeded),
        (401, #"{"unexpected":"shape"}"#, .authentication),
    ])
    func classifiesUnparsableBodiesByStatus(status: Int, body: String, kind: ProviderError.Kind) {
        let error = adapter.classifyError(status: status, headers: ["retry-after": "5"], body: ByteBuffer(string: body))
        #expect(error.kind == kind)
        #expect(error.status == status)
        #expect(error.retryAfter == .seconds(5))
        #expect(!error.message.isEmpty)
    }

    // MARK: - Streaming

    static let toolStream = """
        event: message_start
        data: {"type":"message_start","message":{"id":"msg_014p7gG3wDgGV9EUtLvnow3U","type":"message","role":"assistant","model":"claude-3-5-sonnet-20241022","stop_sequence":null,"usage":{"input_tokens":472,"output_tokens":2},"content":[],"stop_reason":null}}

        event: content_block_start
        data: {"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":""}}

        event: content_block_delta
        data: {"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"The user wants weather."}}

        event: content_block_delta
        data: {"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"EqQBCgIYAh"}}

        event: content_block_stop
        data: {"type":"content_block_stop","index":0}

        event: content_block_start
        data: {"type":"content_block_start","index":1,"content_block":{"type":"text","text":""}}

        event: ping
        data: {"type": "ping"}

        event: content_block_delta
        data: {"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"Okay, let"}}

        event: content_block_delta
        data: {"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"'s check — wörld 👋"}}

        event: content_block_stop
        data: {"type":"content_block_stop","index":1}

        event: content_block_start
        data: {"type":"content_block_start","index":2,"content_block":{"type":"tool_use","id":"toolu_01T1x1fJ34qAmk2tNTrN7Up6","name":"get_weather","input":{}}}

        event: content_block_delta
        data: {"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":""}}

        event: content_block_delta
        data: {"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":"{\\"location\\": \\"San Fra"}}

        event: content_block_delta
        data: {"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":"ncisco, CA\\"}"}}

        event: content_block_stop
        data: {"type":"content_block_stop","index":2}

        event: content_block_start
        data: {"type":"content_block_start","index":3,"content_block":{"type":"tool_use","id":"toolu_02","name":"get_time","input":{}}}

        event: content_block_stop
        data: {"type":"content_block_stop","index":3}

        event: message_delta
        data: {"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":89}}

        event: message_stop
        data: {"type":"message_stop"}


        """

    static let toolStreamSummary = StreamSummary(
        text: "Okay, let's check — wörld 👋",
        toolCalls: [
            0: .init(id: "toolu_01T1x1fJ34qAmk2tNTrN7Up6", name: "get_weather", arguments: #"{"location": "San Francisco, CA"}"#),
            1: .init(id: "toolu_02", name: "get_time", arguments: "{}"),
        ],
        finishReasons: [.toolCalls],
        usage: Usage(promptTokens: 472, completionTokens: 89),
        usageCount: 1,
        isComplete: true,
        ids: ["msg_014p7gG3wDgGV9EUtLvnow3U"],
        models: ["claude-3-5-sonnet-20241022"]
    )

    @Test func decodesStreamWhole() throws {
        #expect(try Self.decode(Self.toolStream, in: [Array(Self.toolStream.utf8)]) == Self.toolStreamSummary)
    }

    @Test func decodesStreamFedOneByteAtATime() throws {
        let bytes = Array(Self.toolStream.utf8)
        #expect(try Self.decode(Self.toolStream, in: bytes.map { [$0] }) == Self.toolStreamSummary)
    }

    @Test func decodesStreamSplitAtEveryByte() throws {
        let bytes = Array(Self.toolStream.utf8)
        for split in 0...bytes.count {
            let summary = try Self.decode(Self.toolStream, in: [Array(bytes[..<split]), Array(bytes[split...])])
            #expect(summary == Self.toolStreamSummary, "split at \(split)")
            if summary != Self.toolStreamSummary { break }
        }
    }

    @Test func eventNameFallsBackToTheJSONType() throws {
        let withoutNames = Self.toolStream.split(separator: "\n", omittingEmptySubsequences: false)
            .filter { !$0.hasPrefix("event:") }
            .joined(separator: "\n")
        #expect(try Self.decode(withoutNames, in: [Array(withoutNames.utf8)]) == Self.toolStreamSummary)
    }

    static let shortStream = """
        event: message_start
        data: {"type":"message_start","message":{"id":"msg_1","model":"claude-3-5-haiku-20241022","usage":{"input_tokens":10,"cache_read_input_tokens":90,"output_tokens":1}}}

        event: content_block_start
        data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}

        event: content_block_delta
        data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hé"}}

        event: content_block_delta
        data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"llo"}}

        event: message_delta
        data: {"type":"message_delta","delta":{"stop_reason":"max_tokens"},"usage":{"input_tokens":12,"output_tokens":5}}

        event: message_stop
        data: {"type":"message_stop"}


        """

    @Test func decodesShortStreamSplitAtEveryByteAndCumulativeUsage() throws {
        let expected = StreamSummary(
            text: "Héllo",
            finishReasons: [.length],
            usage: Usage(promptTokens: 102, completionTokens: 5, cachedTokens: 90),
            usageCount: 1,
            isComplete: true,
            ids: ["msg_1"],
            models: ["claude-3-5-haiku-20241022"]
        )
        let bytes = Array(Self.shortStream.utf8)
        #expect(try Self.decode(Self.shortStream, in: bytes.map { [$0] }) == expected)
        for split in 0...bytes.count {
            #expect(try Self.decode(Self.shortStream, in: [Array(bytes[..<split]), Array(bytes[split...])]) == expected, "split at \(split)")
        }
    }

    @Test func streamWithoutMessageStopIsIncomplete() throws {
        let cut = String(Self.shortStream[..<Self.shortStream.range(of: "event: message_stop")!.lowerBound])
        let summary = try Self.decode(cut, in: [Array(cut.utf8)])
        #expect(!summary.isComplete)
        #expect(summary.text == "Héllo")
    }

    @Test(arguments: [
        ("overloaded_error", ProviderError.Kind.overloaded),
        ("api_error", .serverError),
        ("rate_limit_error", .rateLimited),
        ("invalid_request_error", .invalidRequest),
    ])
    func inStreamErrorEventsThrow(type: String, kind: ProviderError.Kind) throws {
        let stream = """
            event: message_start
            data: {"type":"message_start","message":{"id":"msg_1","model":"claude-3-5-sonnet-20241022","usage":{"input_tokens":10,"output_tokens":1}}}

            event: content_block_delta
            data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Partial"}}

            event: error
            data: {"type":"error","error":{"type":"\(type)","message":"Overloaded"}}


            """
        var parser = ServerSentEventParser()
        var decoder = adapter.makeStreamDecoder(for: try Self.provider())
        var text = ""
        let error = #expect(throws: ProviderError.self) {
            for event in try parser.feed(stream) {
                if let chunk = try decoder.decode(event) { text += chunk.content }
            }
        }
        #expect(error?.kind == kind)
        #expect(error?.code == type)
        #expect(error?.message == "Overloaded")
        #expect(text == "Partial")
        #expect(!decoder.isComplete)
    }

    @Test(arguments: [
        ServerSentEvent(event: "content_block_delta", data: #"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"x""#),
        ServerSentEvent(event: "message_start", data: "not json"),
        ServerSentEvent(event: "content_block_start", data: #"{"type":"content_block_start","index":0}"#),
        ServerSentEvent(event: "content_block_delta", data: #"{"type":"content_block_delta","index":0}"#),
        ServerSentEvent(data: #"{"type":"content_block_delta","delta":{"type":"input_json_delta","partial_json":"{"}}"#),
        ServerSentEvent(event: "message_delta", data: #"{"type":"message_delta","usage":{"output_tokens":"five"}}"#),
    ])
    func malformedStreamEventsAreInvalidResponses(event: ServerSentEvent) throws {
        var decoder = adapter.makeStreamDecoder(for: try Self.provider())
        let error = #expect(throws: ProviderError.self) { try decoder.decode(event) }
        #expect(error?.kind == .invalidResponse)
    }

    @Test func ignoresPingsAndUnknownEvents() throws {
        var decoder = adapter.makeStreamDecoder(for: try Self.provider())
        #expect(try decoder.decode(ServerSentEvent(event: "ping", data: #"{"type": "ping"}"#)) == nil)
        #expect(try decoder.decode(ServerSentEvent(event: "future_event", data: #"{"type": "future_event"}"#)) == nil)
        #expect(!decoder.isComplete)
        #expect(try decoder.decode(ServerSentEvent(event: "message_stop", data: "")) == nil)
        #expect(decoder.isComplete)
    }

    // MARK: - Helpers

    static func provider() throws -> ResolvedProvider {
        try Provider("anthropic", model: "claude-3-5-sonnet-20241022", apiKey: "sk-ant-test").resolved()
    }

    static func json(_ parts: HTTPRequestParts) throws -> JSONValue {
        let body = try #require(parts.body)
        return try JSONValue(parsing: String(buffer: body))
    }

    /// Feeds `pieces` to a parser and the adapter's decoder and sums up the chunks.
    static func decode(_ stream: String, in pieces: [[UInt8]]) throws -> StreamSummary {
        try StreamSummary.decode(stream, in: pieces, adapter: AnthropicAdapter(), provider: try provider())
    }
}
