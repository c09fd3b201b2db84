import Foundation
import Testing
import NIOCore
import NIOHTTP1
@testable import LLMFallback

@Suite("GeminiAdapter")
struct GeminiAdapterTests {
    let adapter = GeminiAdapter()

    // MARK: - Request encoding

    @Test func encodesURLHeadersAndBody() throws {
        var provider = Provider("google", model: "gemini-2.0-flash", apiKey: "AIza-test-key")
        provider.headers = ["x-goog-user-project": "my-project"]
        let request = ChatRequest(
            messages: [.system("You are terse."), .user("Hi"), .assistant("Hello!"), .user("Bye"), .system("Answer in French.")],
            temperature: 0.5,
            topP: 0.9,
            maxTokens: 256,
            stop: ["END"],
            seed: 7,
            user: "ignored"
        )
        let parts = try adapter.makeRequest(request, for: try provider.resolved(), stream: false)
        #expect(parts.method == .POST)
        #expect(parts.url == "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.0-flash:generateContent")
        #expect(!parts.url.contains("AIza-test-key"))
        #expect(!parts.url.contains("key="))
        #expect(parts.headers.first(name: "x-goog-api-key") == "AIza-test-key")
        #expect(parts.headers.first(name: "content-type") == "application/json")
        #expect(parts.headers.first(name: "x-goog-user-project") == "my-project")
        #expect(parts.headers.first(name: "authorization") == nil)
        let expected: JSONValue = [
            "contents": [
                ["role": "user", "parts": [["text": "Hi"]]],
                ["role": "model", "parts": [["text": "Hello!"]]],
                ["role": "user", "parts": [["text": "Bye"]]],
            ],
            "systemInstruction": ["parts": [["text": "You are terse.\n\nAnswer in French."]]],
            "generationConfig": [
                "maxOutputTokens": 256,
                "temperature": 0.5,
                "topP": 0.9,
                "stopSequences": ["END"],
                "seed": 7,
            ],
        ]
        #expect(try Self.json(parts) == expected)
    }

    @Test func streamingURLKeepsTheKeyOutOfTheURL() throws {
        let provider = try Provider("gemini", model: "gemini-1.5-pro", apiKey: "AIza-test-key").resolved()
        let parts = try adapter.makeRequest(ChatRequest(messages: [.user("Hi")]), for: provider, stream: true)
        #expect(parts.url == "https://generativelanguage.googleapis.com/v1beta/models/gemini-1.5-pro:streamGenerateContent?alt=sse")
        #expect(!parts.url.contains("AIza-test-key"))
        #expect(parts.headers.first(name: "x-goog-api-key") == "AIza-test-key")
        #expect(parts.headers.first(name: "accept") == "text/event-stream")
        // No generation settings: no generationConfig.
        let expected: JSONValue = ["contents": [["role": "user", "parts": [["text": "Hi"]]]]]
        #expect(try Self.json(parts) == expected)
    }

    @Test func acceptsResourceNamesAndCustomBaseURLs() throws {
        let tuned = try Provider("google", model: "tunedModels/my-model-1", apiKey: "k", baseURL: "http://localhost:9000/").resolved()
        #expect(try adapter.makeRequest(ChatRequest(messages: [.user("Hi")]), for: tuned, stream: false).url
            == "http://localhost:9000/v1beta/tunedModels/my-model-1:generateContent")
        let prefixed = try Provider("google", model: "models/gemini-2.0-flash", apiKey: "k").resolved()
        #expect(try adapter.makeRequest(ChatRequest(messages: [.user("Hi")]), for: prefixed, stream: false).url
            == "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.0-flash:generateContent")
    }

    @Test func mergesTurnsAndEncodesToolRoundTrip() throws {
        let messages: [Message] = [
            .user("Weather in Paris"),
            .user("and the time?"),
            .assistant("Let me check.", toolCalls: [
                ToolCall(id: "call_a", name: "get_weather", arguments: #"{"city":"Paris"}"#),
                ToolCall(id: "call_b", name: "get_time", arguments: ""),
            ]),
            .tool(callID: "call_a", content: #"{"temperature": 18, "sky": "sunny"}"#),
            .tool(callID: "call_b", content: "14:05"),
            .tool(callID: "elsewhere", name: "lookup", content: "[1, 2]"),
            .user("Thanks"),
            .assistant("", toolCalls: [ToolCall(id: "call_c", name: "get_weather", arguments: "oops")]),
        ]
        let parts = try adapter.makeRequest(ChatRequest(messages: messages), for: try Self.provider(), stream: false)
        let expected: JSONValue = [
            "contents": [
                ["role": "user", "parts": [["text": "Weather in Paris"], ["text": "and the time?"]]],
                ["role": "model", "parts": [
                    ["text": "Let me check."],
                    ["functionCall": ["name": "get_weather", "args": ["city": "Paris"]]],
                    ["functionCall": ["name": "get_time", "args": [:]]],
                ]],
                ["role": "user", "parts": [
                    ["functionResponse": ["name": "get_weather", "response": ["temperature": 18, "sky": "sunny"]]],
                    ["functionResponse": ["name": "get_time", "response": ["content": "14:05"]]],
                    ["functionResponse": ["name": "lookup", "response": ["content": "[1, 2]"]]],
                    ["text": "Thanks"],
                ]],
                ["role": "model", "parts": [["functionCall": ["name": "get_weather", "args": [:]]]]],
            ],
        ]
        #expect(try Self.json(parts) == expected)
    }

    @Test func toolResultWithoutAnyNameIsRejected() throws {
        let request = ChatRequest(messages: [.user("Hi"), .tool(callID: "unknown", content: "42")])
        let error = #expect(throws: ProviderError.self) { try adapter.makeRequest(request, for: try Self.provider(), stream: false) }
        #expect(error?.kind == .invalidRequest)
        let unknownRole = ChatRequest(messages: [Message(role: Role(rawValue: "critic"), content: "Hmm")])
        #expect(throws: ProviderError.self) { try adapter.makeRequest(unknownRole, for: try Self.provider(), stream: false) }
    }

    @Test func encodesToolsAndToolConfig() throws {
        let weather = Tool(
            name: "get_weather",
            description: "Current weather",
            parameters: [
                "$schema": "http://json-schema.org/draft-07/schema#",
                "type": "object",
                "properties": [
                    "city": ["type": "string", "description": "City name"],
                    "unit": ["type": ["string", "null"], "enum": ["c", "f"]],
                    "days": ["type": "array", "items": ["type": "integer", "minimum": 1], "maxItems": 7],
                    "additionalProperties": ["const": "a property, not the keyword"],
                ],
                "required": ["city"],
                "additionalProperties": false,
            ],
            strict: true
        )
        let clock = Tool(name: "get_time")
        func body(_ choice: ToolChoice?, tools: [Tool]) throws -> JSONValue {
            let request = ChatRequest(messages: [.user("Hi")], tools: tools, toolChoice: choice, parallelToolCalls: false)
            return try Self.json(try adapter.makeRequest(request, for: try Self.provider(), stream: false))
        }
        let full = try body(nil, tools: [weather, clock])
        let expectedTools: JSONValue = [
            ["functionDeclarations": [
                [
                    "name": "get_weather",
                    "description": "Current weather",
                    "parameters": [
                        "type": "object",
                        "properties": [
                            "city": ["type": "string", "description": "City name"],
                            "unit": ["type": "string", "nullable": true, "enum": ["c", "f"]],
                            "days": ["type": "array", "items": ["type": "integer", "minimum": 1], "maxItems": 7],
                            "additionalProperties": ["enum": ["a property, not the keyword"]],
                        ],
                        "required": ["city"],
                    ],
                ],
                ["name": "get_time"],
            ]],
        ]
        #expect(full["tools"] == expectedTools)
        #expect(full["toolConfig"] == nil)
        #expect(try body(.auto, tools: [clock])["toolConfig"] == ["functionCallingConfig": ["mode": "AUTO"]])
        #expect(try body(ToolChoice.none, tools: [clock])["toolConfig"] == ["functionCallingConfig": ["mode": "NONE"]])
        #expect(try body(.required, tools: [clock])["toolConfig"] == ["functionCallingConfig": ["mode": "ANY"]])
        #expect(try body(.tool("get_time"), tools: [clock])["toolConfig"]
            == ["functionCallingConfig": ["mode": "ANY", "allowedFunctionNames": ["get_time"]]])
        let bare = try body(.required, tools: [])
        #expect(bare["tools"] == nil)
        #expect(bare["toolConfig"] == nil)
    }

    @Test func encodesImages() throws {
        let message = Message.user([
            .text("What is in these?"),
            .image(.base64("iVBORw0KGgo=", mediaType: "image/png")),
            .image(.url("data:image/webp;base64,UklGRg==")),
            .image(.url("https://example.com/photos/cat.PNG?size=large#top")),
            .image(.url("https://example.com/render")),
            .image(.url("gs://bucket/doc.pdf")),
        ])
        let parts = try adapter.makeRequest(ChatRequest(messages: [message]), for: try Self.provider(), stream: false)
        let expected: JSONValue = [
            ["role": "user", "parts": [
                ["text": "What is in these?"],
                ["inlineData": ["mimeType": "image/png", "data": "iVBORw0KGgo="]],
                ["inlineData": ["mimeType": "image/webp", "data": "UklGRg=="]],
                ["fileData": ["mimeType": "image/png", "fileUri": "https://example.com/photos/cat.PNG?size=large#top"]],
                ["fileData": ["mimeType": "image/jpeg", "fileUri": "https://example.com/render"]],
                ["fileData": ["mimeType": "application/pdf", "fileUri": "gs://bucket/doc.pdf"]],
            ]],
        ]
        #expect(try Self.json(parts)["contents"] == expected)
        let bad = ChatRequest(messages: [.user([.image(.url("data:image/png;base64,%%%"))])])
        #expect(throws: ProviderError.self) { try adapter.makeRequest(bad, for: try Self.provider(), stream: false) }
    }

    @Test func encodesJSONOutput() throws {
        let provider = try Self.provider()
        let object = try Self.json(try adapter.makeRequest(
            ChatRequest(messages: [.user("2+2?")], responseFormat: .jsonObject), for: provider, stream: false))
        #expect(object["generationConfig"] == ["responseMimeType": "application/json"])

        let schema: JSONValue = [
            "type": "object",
            "properties": ["answer": ["type": "integer"]],
            "required": ["answer"],
            "additionalProperties": false,
        ]
        let typed = try Self.json(try adapter.makeRequest(
            ChatRequest(messages: [.user("2+2?")], temperature: 0.25, responseFormat: .jsonSchema(name: "sum", schema: schema, strict: true)),
            for: provider, stream: false))
        let expected: JSONValue = [
            "temperature": 0.25,
            "responseMimeType": "application/json",
            "responseSchema": ["type": "object", "properties": ["answer": ["type": "integer"]], "required": ["answer"]],
        ]
        #expect(typed["generationConfig"] == expected)

        let text = try Self.json(try adapter.makeRequest(ChatRequest(messages: [.user("Hi")], responseFormat: .text), for: provider, stream: false))
        #expect(text["generationConfig"] == nil)
    }

    // MARK: - Responses

    @Test func decodesTextResponse() throws {
        let body = """
            {
              "candidates": [
                {
                  "content": {
                    "parts": [
                      {"text": "Let me think about greetings.", "thought": true},
                      {"text": "Hello"},
                      {"text": ", world"}
                    ],
                    "role": "model"
                  },
                  "finishReason": "STOP",
                  "index": 0,
                  "safetyRatings": [{"category": "HARM_CATEGORY_HARASSMENT", "probability": "NEGLIGIBLE"}]
                }
              ],
              "usageMetadata": {
                "promptTokenCount": 12,
                "candidatesTokenCount": 4,
                "totalTokenCount": 46,
                "cachedContentTokenCount": 8,
                "thoughtsTokenCount": 30,
                "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 12}]
              },
              "modelVersion": "gemini-2.5-flash",
              "responseId": "mAitaLmkHPPlz7IPvtfUqQ4"
            }
            """
        let response = try adapter.decodeResponse(ByteBuffer(string: body), headers: [:], for: try Self.provider())
        #expect(response.content == "Hello, world")
        #expect(response.toolCalls.isEmpty)
        #expect(response.finishReason == .stop)
        #expect(response.usage == Usage(promptTokens: 12, completionTokens: 34, totalTokens: 46, cachedTokens: 8, reasoningTokens: 30))
        #expect(response.id == "mAitaLmkHPPlz7IPvtfUqQ4")
        #expect(response.model == "gemini-2.5-flash")
        #expect(response.provider == "google")
        #expect(response.rawJSON?["responseId"] == "mAitaLmkHPPlz7IPvtfUqQ4")
    }

    @Test func decodesFunctionCalls() throws {
        let body = """
            {"candidates": [{"content": {"role": "model", "parts": [
                {"text": "Checking."},
                {"functionCall": {"name": "get_weather", "args": {"unit": "c", "city": "Paris"}}, "thoughtSignature": "CiQB"},
                {"functionCall": {"id": "fc-77", "name": "get_time"}}
              ]}, "finishReason": "STOP", "index": 0}],
             "usageMetadata": {"promptTokenCount": 50, "candidatesTokenCount": 20, "totalTokenCount": 70}}
            """
        let response = try adapter.decodeResponse(ByteBuffer(string: body), headers: [:], for: try Self.provider())
        #expect(response.content == "Checking.")
        #expect(response.toolCalls == [
            // The arguments in the model's order, and the signature kept for the next turn (Gemini 3 needs it).
            ToolCall(
                id: "call_0", name: "get_weather", arguments: #"{"unit":"c","city":"Paris"}"#,
                providerState: ProviderState(origin: "gemini:gemini-2.0-flash", value: "CiQB")),
            ToolCall(id: "fc-77", name: "get_time", arguments: "{}"),
        ])
        #expect(response.finishReason == .toolCalls)
        #expect(response.usage == Usage(promptTokens: 50, completionTokens: 20, totalTokens: 70))
        #expect(response.model == "gemini-2.0-flash")
        #expect(response.id == nil)
    }

    @Test(arguments: [
        ("STOP", FinishReason.stop), ("MAX_TOKENS", .length), ("SAFETY", .contentFilter), ("RECITATION", .contentFilter),
        ("BLOCKLIST", .contentFilter), ("PROHIBITED_CONTENT", .contentFilter), ("SPII", .contentFilter),
        ("MALFORMED_FUNCTION_CALL", .other("MALFORMED_FUNCTION_CALL")), ("OTHER", .other("OTHER")),
    ])
    func mapsFinishReasons(raw: String, expected: FinishReason) throws {
        let body = #"{"candidates": [{"content": {"parts": [{"text": "x"}], "role": "model"}, "finishReason": "\#(raw)", "index": 0}]}"#
        let response = try adapter.decodeResponse(ByteBuffer(string: body), headers: [:], for: try Self.provider())
        #expect(response.finishReason == expected)
        #expect(response.usage == nil)
    }

    @Test func safetyStopWithoutContentIsAnEmptyFilteredAnswer() throws {
        let body = #"{"candidates": [{"finishReason": "SAFETY", "index": 0, "safetyRatings": []}], "modelVersion": "gemini-2.0-flash-001"}"#
        let response = try adapter.decodeResponse(ByteBuffer(string: body), headers: [:], for: try Self.provider())
        #expect(response.content == "")
        #expect(response.finishReason == .contentFilter)
    }

    @Test func blockedPromptIsContentFiltered() throws {
        let body = """
            {"promptFeedback": {"blockReason": "PROHIBITED_CONTENT", "safetyRatings": []},
             "usageMetadata": {"promptTokenCount": 9, "totalTokenCount": 9}, "modelVersion": "gemini-2.0-flash"}
            """
        let error = #expect(throws: ProviderError.self) {
            try adapter.decodeResponse(ByteBuffer(string: body), headers: [:], for: try Self.provider())
        }
        #expect(error?.kind == .contentFiltered)
        #expect(error?.message.contains("PROHIBITED_CONTENT") == true)
        #expect(error?.isTransient == false)
    }

    @Test func errorBodyInSuccessfulResponseIsClassified() throws {
        let body = #"{"error": {"code": 503, "message": "The model is overloaded. Please try again later.", "status": "UNAVAILABLE"}}"#
        let error = #expect(throws: ProviderError.self) {
            try adapter.decodeResponse(ByteBuffer(string: body), headers: [:], for: try Self.provider())
        }
        #expect(error?.kind == .overloaded)
        #expect(error?.code == "UNAVAILABLE")
    }

    @Test(arguments: [
        "",
        "<html>Bad gateway</html>",
        "{}",
        #"{"candidates": []}"#,
        #"{"candidates": {"content": "x"}}"#,
        #"{"candidates": [{"content": {"parts": [{"functionCall": {"args": {}}}]}}]}"#,
        #"{"candidates": [{"content": {"parts": [{"text": 42}]}}]}"#,
        #"{"candidates": [{"content": {"parts": [{"text": "trunc"#,
        "[1, 2, 3]",
    ])
    func malformedBodiesAreInvalidResponses(body: String) throws {
        let error = #expect(throws: ProviderError.self) {
            try adapter.decodeResponse(ByteBuffer(string: body), headers: [:], for: try Self.provider())
        }
        #expect(error?.kind == .invalidResponse)
        #expect(error?.message.isEmpty == false)
    }

    // MARK: - Errors

    struct ErrorCase: Sendable, CustomTestStringConvertible {
        let status: Int
        let rpcStatus: String
        let message: String
        let kind: ProviderError.Kind
        var details = "[]"
        var transient: Bool? = nil
        var testDescription: String { "\(status) \(rpcStatus)" }
    }

    @Test(arguments: [
        ErrorCase(status: 400, rpcStatus: "INVALID_ARGUMENT", message: "Invalid JSON payload received. Unknown name \\\"foo\\\"", kind: .invalidRequest),
        ErrorCase(
            status: 400, rpcStatus: "INVALID_ARGUMENT",
            message: "The input token count (1200000) exceeds the maximum number of tokens allowed (1048576).",
            kind: .contextLengthExceeded),
        ErrorCase(
            status: 400, rpcStatus: "INVALID_ARGUMENT", message: "API key not valid. Please pass a valid API key.", kind: .authentication,
            details: #"[{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID", "domain": "googleapis.com", "metadata": {"service": "generativelanguage.googleapis.com"}}]"#),
        ErrorCase(status: 400, rpcStatus: "FAILED_PRECONDITION", message: "User location is not supported for the API use.", kind: .invalidRequest),
        ErrorCase(status: 401, rpcStatus: "UNAUTHENTICATED", message: "Request had invalid authentication credentials.", kind: .authentication),
        ErrorCase(status: 403, rpcStatus: "PERMISSION_DENIED", message: "Method doesn't allow unregistered callers.", kind: .permissionDenied),
        ErrorCase(status: 404, rpcStatus: "NOT_FOUND", message: "models/gemini-9 is not found for API version v1beta", kind: .notFound),
        ErrorCase(status: 429, rpcStatus: "RESOURCE_EXHAUSTED", message: "Resource has been exhausted (e.g. check quota).", kind: .rateLimited, transient: true),
        ErrorCase(status: 500, rpcStatus: "INTERNAL", message: "An internal error has occurred.", kind: .serverError, transient: true),
        ErrorCase(status: 503, rpcStatus: "UNAVAILABLE", message: "The model is overloaded. Please try again later.", kind: .overloaded, transient: true),
        ErrorCase(status: 504, rpcStatus: "DEADLINE_EXCEEDED", message: "Deadline expired before operation could complete.", kind: .timeout),
    ])
    func classifiesErrorBodies(_ testCase: ErrorCase) {
        let body = """
            {"error": {"code": \(testCase.status), "message": "\(testCase.message)", "status": "\(testCase.rpcStatus)", "details": \(testCase.details)}}
            """
        let headers: HTTPHeaders = ["content-type": "application/json; charset=UTF-8", "x-goog-request-id": "goog-req-1"]
        let error = adapter.classifyError(status: testCase.status, headers: headers, body: ByteBuffer(string: body))
        #expect(error.kind == testCase.kind)
        #expect(error.status == testCase.status)
        #expect(error.code == testCase.rpcStatus)
        #expect(error.message == testCase.message.replacingOccurrences(of: "\\\"", with: "\""))
        #expect(error.requestID == "goog-req-1")
        if let transient = testCase.transient { #expect(error.isTransient == transient) }
    }

    static let perMinuteQuota = """
        {
          "error": {
            "code": 429,
            "message": "You exceeded your current quota, please check your plan and billing details.",
            "status": "RESOURCE_EXHAUSTED",
            "details": [
              {
                "@type": "type.googleapis.com/google.rpc.QuotaFailure",
                "violations": [
                  {
                    "quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
                    "quotaId": "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
                    "quotaDimensions": {"location": "global", "model": "gemini-2.0-flash"},
                    "quotaValue": "15"
                  }
                ]
              },
              {"@type": "type.googleapis.com/google.rpc.Help", "links": [{"description": "Learn more", "url": "https://ai.google.dev/gemini-api/docs/rate-limits"}]},
              {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "12s"}
            ]
          }
        }
        """

    @Test func readsRetryInfoDelay() {
        let error = adapter.classifyError(status: 429, headers: ["retry-after": "60"], body: ByteBuffer(string: Self.perMinuteQuota))
        #expect(error.kind == .rateLimited)
        #expect(error.isTransient)
        #expect(error.retryAfter == .seconds(12))
        #expect(error.code == "RESOURCE_EXHAUSTED")
    }

    @Test func perDayQuotaIsNotTransient() {
        let perDay = Self.perMinuteQuota
            .replacingOccurrences(of: "PerMinute", with: "PerDay")
            .replacingOccurrences(of: "\"12s\"", with: "\"0.5s\"")
        let error = adapter.classifyError(status: 429, headers: [:], body: ByteBuffer(string: perDay))
        #expect(error.kind == .rateLimited)
        #expect(!error.isTransient)
        #expect(error.retryAfter == .milliseconds(500))

        let byMessage = #"{"error": {"code": 429, "message": "Quota exceeded for quota metric 'Requests' per day.", "status": "RESOURCE_EXHAUSTED"}}"#
        let messageError = adapter.classifyError(status: 429, headers: [:], body: ByteBuffer(string: byMessage))
        #expect(!messageError.isTransient)
    }

    @Test func fallsBackToRetryAfterHeaders() {
        let body = ByteBuffer(string: #"{"error": {"code": 429, "message": "Resource exhausted.", "status": "RESOURCE_EXHAUSTED"}}"#)
        #expect(adapter.classifyError(status: 429, headers: ["retry-after": "7"], body: body).retryAfter == .seconds(7))
        #expect(adapter.classifyError(status: 429, headers: ["retry-after-ms": "250"], body: body).retryAfter == .milliseconds(250))
        #expect(adapter.classifyError(status: 429, headers: [:], body: body).retryAfter == nil)
    }

    @Test func acceptsArrayWrappedErrors() {
        let body = #"[{"error": {"code": 503, "message": "The service is currently unavailable.", "status": "UNAVAILABLE"}}]"#
        let error = adapter.classifyError(status: 503, headers: [:], body: ByteBuffer(string: body))
        #expect(error.kind == .overloaded)
        #expect(error.message == "The service is currently unavailable.")
    }

    @Test(arguments: [
        (502, "<html><body>Bad Gateway</body></html>", ProviderError.Kind.serverError),
        (503, "", .overloaded),
        (429, "Too Many Requests", .rateLimited),
        (400, #"{"error": "bare string"}"#, .invalidRequest),
        (404, "Not Found", .notFound),
    ])
    func classifiesUnparsableBodiesByStatus(status: Int, body: String, kind: ProviderError.Kind) {
        let error = adapter.classifyError(status: status, headers: ["retry-after": "3"], body: ByteBuffer(string: body))
        #expect(error.kind == kind)
        #expect(error.status == status)
        #expect(error.retryAfter == .seconds(3))
        #expect(!error.message.isEmpty)
    }

    // MARK: - Streaming

    static let toolStream = """
        data: {"candidates": [{"content": {"parts": [{"text": "Thinking about it", "thought": true}],"role": "model"},"index": 0}],"usageMetadata": {"promptTokenCount": 31,"totalTokenCount": 31},"modelVersion": "gemini-2.5-flash","responseId": "resp-1"}

        data: {"candidates": [{"content": {"parts": [{"text": "Okay, let"}],"role": "model"},"index": 0}],"usageMetadata": {"promptTokenCount": 31,"candidatesTokenCount": 2,"totalTokenCount": 33},"modelVersion": "gemini-2.5-flash","responseId": "resp-1"}

        data: {"candidates": [{"content": {"parts": [{"text": "'s check — wörld 👋"},{"functionCall": {"name": "get_weather","args": {"location": "San Francisco, CA"}}}],"role": "model"},"index": 0}],"usageMetadata": {"promptTokenCount": 31,"candidatesTokenCount": 9,"totalTokenCount": 40},"modelVersion": "gemini-2.5-flash","responseId": "resp-1"}

        data: {"candidates": [{"content": {"parts": [{"functionCall": {"id": "fc-2","name": "get_time","args": {}}}],"role": "model"},"finishReason": "STOP","index": 0}],"usageMetadata": {"promptTokenCount": 31,"candidatesTokenCount": 14,"totalTokenCount": 65,"thoughtsTokenCount": 20},"modelVersion": "gemini-2.5-flash","responseId": "resp-1"}


        """

    static let toolStreamSummary = StreamSummary(
        text: "Okay, let's check — wörld 👋",
        toolCalls: [
            0: .init(id: "call_0", name: "get_weather", arguments: #"{"location":"San Francisco, CA"}"#),
            1: .init(id: "fc-2", name: "get_time", arguments: "{}"),
        ],
        finishReasons: [.toolCalls],
        usage: Usage(promptTokens: 31, completionTokens: 34, totalTokens: 65, reasoningTokens: 20),
        usageCount: 1,
        isComplete: true,
        ids: ["resp-1"],
        models: ["gemini-2.5-flash"]
    )

    @Test func decodesStreamWhole() throws {
        #expect(try Self.decode(Self.toolStream, in: [Array(Self.toolStream.utf8)]) == Self.toolStreamSummary)
    }

    @Test(arguments: ["\n", "\r\n", "\r"])
    func decodesStreamFedOneByteAtATime(lineEnd: String) throws {
        let stream = Self.toolStream.replacingOccurrences(of: "\n", with: lineEnd)
        let bytes = Array(stream.utf8)
        #expect(try Self.decode(stream, in: bytes.map { [$0] }) == Self.toolStreamSummary)
    }

    @Test(arguments: ["\n", "\r\n"])
    func decodesStreamSplitAtEveryByte(lineEnd: String) throws {
        let stream = Self.toolStream.replacingOccurrences(of: "\n", with: lineEnd)
        let bytes = Array(stream.utf8)
        for split in 0...bytes.count {
            let summary = try Self.decode(stream, in: [Array(bytes[..<split]), Array(bytes[split...])])
            #expect(summary == Self.toolStreamSummary, "split at \(split)")
            if summary != Self.toolStreamSummary { break }
        }
    }

    @Test func finishReasonCompletesTheStream() throws {
        let stream = """
            data: {"candidates": [{"content": {"parts": [{"text": "Hé"}],"role": "model"},"index": 0}],"modelVersion": "gemini-2.0-flash"}\r
            \r
            data: {"candidates": [{"content": {"parts": [{"text": "llo"}],"role": "model"},"finishReason": "MAX_TOKENS","index": 0}],"usageMetadata": {"promptTokenCount": 3,"candidatesTokenCount": 2,"totalTokenCount": 5},"modelVersion": "gemini-2.0-flash"}\r
            \r

            """
        let expected = StreamSummary(
            text: "Héllo", finishReasons: [.length], usage: Usage(promptTokens: 3, completionTokens: 2), usageCount: 1,
            isComplete: true, models: ["gemini-2.0-flash"]
        )
        let bytes = Array(stream.utf8)
        #expect(try Self.decode(stream, in: bytes.map { [$0] }) == expected)
        for split in 0...bytes.count {
            #expect(try Self.decode(stream, in: [Array(bytes[..<split]), Array(bytes[split...])]) == expected, "split at \(split)")
        }
        let cut = String(stream[..<stream.range(of: "data:", options: .backwards)!.lowerBound])
        let partial = try Self.decode(cut, in: [Array(cut.utf8)])
        #expect(!partial.isComplete)
        #expect(partial.usage == nil)
        #expect(partial.text == "Hé")
    }

    @Test func usageAfterTheFinishIsStillReported() throws {
        var decoder = adapter.makeStreamDecoder(for: try Self.provider())
        let finish = try decoder.decode(ServerSentEvent(data: #"{"candidates": [{"content": {"parts": [{"text": "Hi"}]}, "finishReason": "STOP"}]}"#))
        #expect(finish?.finishReason == .stop)
        #expect(finish?.usage == nil)
        #expect(decoder.isComplete)
        let usage = try decoder.decode(ServerSentEvent(data: #"{"usageMetadata": {"promptTokenCount": 4, "candidatesTokenCount": 1, "totalTokenCount": 5}}"#))
        #expect(usage?.usage == Usage(promptTokens: 4, completionTokens: 1))
        #expect(usage?.hasContent == false)
    }

    @Test func inStreamErrorEventThrows() throws {
        let stream = """
            data: {"candidates": [{"content": {"parts": [{"text": "Partial"}],"role": "model"},"index": 0}]}

            data: {"error": {"code": 503, "message": "The model is overloaded. Please try again later.", "status": "UNAVAILABLE"}}


            """
        var parser = ServerSentEventParser()
        var decoder = adapter.makeStreamDecoder(for: try Self.provider())
        var text = ""
        let error = #expect(throws: ProviderError.self) {
            for event in try parser.feed(stream) {
                if let chunk = try decoder.decode(event) { text += chunk.content }
            }
        }
        #expect(error?.kind == .overloaded)
        #expect(error?.code == "UNAVAILABLE")
        #expect(text == "Partial")
        #expect(!decoder.isComplete)
    }

    @Test func blockedPromptInStreamThrows() throws {
        var decoder = adapter.makeStreamDecoder(for: try Self.provider())
        let event = ServerSentEvent(data: #"{"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": {"promptTokenCount": 7, "totalTokenCount": 7}}"#)
        let error = #expect(throws: ProviderError.self) { try decoder.decode(event) }
        #expect(error?.kind == .contentFiltered)
        #expect(error?.message.contains("SAFETY") == true)
    }

    @Test(arguments: [
        #"{"candidates": [{"content": {"parts": [{"text": "x"#,
        "not json",
        #"{"candidates": [{"content": {"parts": [{"functionCall": {"args": {}}}]}}]}"#,
        #"{"candidates": "nope"}"#,
    ])
    func malformedStreamEventsAreInvalidResponses(data: String) throws {
        var decoder = adapter.makeStreamDecoder(for: try Self.provider())
        let error = #expect(throws: ProviderError.self) { try decoder.decode(ServerSentEvent(data: data)) }
        #expect(error?.kind == .invalidResponse)
    }

    // MARK: - Helpers

    static func provider() throws -> ResolvedProvider {
        try Provider("google", model: "gemini-2.0-flash", apiKey: "AIza-test-key").resolved()
    }

    static func json(_ parts: HTTPRequestParts) throws -> JSONValue {
        let body = try #require(parts.body)
        return try JSONValue(parsing: String(buffer: body))
    }

    /// Feeds `pieces` to a parser and the adapter's decoder and sums up the chunks.
    static func decode(_ stream: String, in pieces: [[UInt8]]) throws -> StreamSummary {
        try StreamSummary.decode(stream, in: pieces, adapter: GeminiAdapter(), provider: try provider())
    }
}
