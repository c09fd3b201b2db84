import Foundation
import LLMFallbackTesting
import Testing

@testable import LLMFallback

/// Every adapter over real HTTP against MockLLMServer.
enum Format: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case openAI, azure, anthropic, gemini

    var testDescription: String { rawValue }

    func provider(_ server: MockLLMServer, model: String, maxRetries: Int = 0, key: String = "secret-key-123") -> Provider {
        var provider: Provider
        switch self {
        case .openAI: provider = Provider("openai", model: model, apiKey: key, baseURL: server.openAIBaseURL, maxRetries: maxRetries)
        case .azure: provider = Provider("azure", model: model, apiKey: key, baseURL: server.baseURL, maxRetries: maxRetries)
        case .anthropic: provider = Provider("anthropic", model: model, apiKey: key, baseURL: server.baseURL, maxRetries: maxRetries)
        case .gemini: provider = Provider("google", model: model, apiKey: key, baseURL: server.baseURL, maxRetries: maxRetries)
        }
        provider.name = "\(rawValue)/\(model)"
        return provider
    }

    var keyHeader: (String, String) {
        switch self {
        case .openAI: return ("authorization", "Bearer secret-key-123")
        case .azure: return ("api-key", "secret-key-123")
        case .anthropic: return ("x-api-key", "secret-key-123")
        case .gemini: return ("x-goog-api-key", "secret-key-123")
        }
    }
}

func singleChain(_ provider: Provider, _ configure: (inout FallbackChain.Configuration) -> Void = { _ in }) -> FallbackChain {
    var configuration = config()
    configure(&configuration)
    return FallbackChain([provider], configuration: configuration)
}

@Suite struct WireFormatIntegrationTests {
    @Test(arguments: Format.allCases)
    func chatOverHTTP(_ format: Format) async throws {
        try await withServer { server in
            server.script("m", .text("Hello there friend", usage: (prompt: 11, completion: 3)))
            let response = try await singleChain(format.provider(server, model: "m")).chat(
                ChatRequest(messages: [.system("Be kind."), .user("Hi")], temperature: 0.2, maxTokens: 50)
            )
            #expect(response.content == "Hello there friend")
            #expect(response.finishReason == .stop)
            #expect(response.usage?.promptTokens == 11)
            #expect(response.usage?.completionTokens == 3)
            #expect(response.rawBody?.isEmpty == false)
            let sent = try #require(server.requests(for: "m").first)
            #expect(sent.header(format.keyHeader.0) == format.keyHeader.1)
            #expect(!sent.path.contains("secret") && !sent.query.values.contains { $0.contains("secret") })
            let body = try JSONValue(parsing: sent.bodyText)
            switch format {
            case .openAI, .azure:
                #expect(body["messages"]?.arrayValue?.count == 2)
            case .anthropic:
                #expect(body["system"] == "Be kind.")
                #expect(body["max_tokens"] == 50)
                #expect(sent.header("anthropic-version") != nil)
            case .gemini:
                #expect(body["systemInstruction"] == ["parts": [["text": "Be kind."]]])
                #expect(body["generationConfig"]?["maxOutputTokens"] == 50)
            }
        }
    }

    @Test(arguments: Format.allCases)
    func toolCallOverHTTP(_ format: Format) async throws {
        try await withServer { server in
            server.script("m", .toolCall(name: "get_weather", arguments: #"{"city":"Paris"}"#))
            let tool = Tool(name: "get_weather", description: "Weather", parameters: ["type": "object", "properties": ["city": ["type": "string"]]])
            let response = try await singleChain(format.provider(server, model: "m")).chat(messages: [.user("Weather?")], tools: [tool])
            #expect(response.toolCalls.count == 1)
            #expect(response.toolCalls.first?.name == "get_weather")
            #expect(response.toolCalls.first?.parsedArguments == ["city": "Paris"])
            #expect(response.finishReason == .toolCalls)
        }
    }

    @Test(arguments: Format.allCases)
    func streamOverHTTP(_ format: Format) async throws {
        try await withServer { server in
            server.script("m", .text("one two three four five", usage: (prompt: 4, completion: 5)))
            var chunks: [ChatChunk] = []
            for try await chunk in singleChain(format.provider(server, model: "m")).stream("count") {
                chunks.append(chunk)
            }
            #expect(chunks.map(\.content).joined() == "one two three four five")
            #expect(chunks.filter(\.hasContent).count >= 5)
            #expect(chunks.compactMap(\.finishReason).last == .stop)
            #expect(chunks.compactMap(\.usage).last?.completionTokens == 5)
            #expect(chunks.allSatisfy { $0.model == "m" })
            #expect(server.requests(for: "m").first?.isStream == true)
        }
    }

    @Test(arguments: Format.allCases)
    func streamedToolCallIsAssembled(_ format: Format) async throws {
        try await withServer { server in
            server.script("m", .toolCall(name: "lookup", arguments: #"{"query":"swift","limit":3}"#))
            let response = try await singleChain(format.provider(server, model: "m")).stream(messages: [.user("find")], tools: [Tool(name: "lookup")]).collect()
            #expect(response.toolCalls.count == 1)
            #expect(response.toolCalls.first?.name == "lookup")
            #expect(response.toolCalls.first?.parsedArguments == ["query": "swift", "limit": 3])
        }
    }

    static let statusCases: [(Int, ProviderError.Kind)] = [
        (400, .invalidRequest), (401, .authentication), (403, .permissionDenied), (404, .notFound), (429, .rateLimited),
        (500, .serverError), (503, .overloaded),
    ]

    @Test(arguments: Format.allCases)
    func errorStatusesAreClassified(_ format: Format) async throws {
        try await withServer { server in
            for (status, kind) in Self.statusCases {
                let model = "m\(status)"
                server.script(model, .status(status, headers: ["retry-after": "7"]))
                var configuration = config()
                configuration.failurePolicy = .failoverOnClientErrors
                let chain = FallbackChain([format.provider(server, model: model)], configuration: configuration)
                do {
                    _ = try await chain.chat("hi")
                    Issue.record("\(format) \(status) should fail")
                } catch let error as AllProvidersFailed {
                    let failure = try #require(error.failures.first)
                    #expect(failure.kind == kind, "\(format) \(status)")
                    #expect(failure.status == status)
                    #expect(failure.retryAfter == .seconds(7))
                    #expect(!failure.message.isEmpty)
                }
            }
        }
    }

    @Test func anthropicOverloadedIs529() async throws {
        try await withServer { server in
            server.script("claude", .status(529))
            let chain = singleChain(Format.anthropic.provider(server, model: "claude"))
            await #expect {
                try await chain.chat("hi")
            } throws: { error in
                (error as? AllProvidersFailed)?.failures.first?.kind == .overloaded
            }
        }
    }

    @Test(arguments: Format.allCases)
    func malformedBodiesAreInvalidResponses(_ format: Format) async throws {
        try await withServer { server in
            server.script("m", [.raw(status: 200, headers: ["content-type": "application/json"], body: "{\"unexpected\": true}"), .raw(status: 200, body: "<html>")])
            let chain = singleChain(format.provider(server, model: "m"))
            for _ in 0..<2 {
                await #expect {
                    try await chain.chat("hi")
                } throws: { error in
                    (error as? AllProvidersFailed)?.failures.first?.kind == .invalidResponse
                }
            }
        }
    }

    @Test(arguments: Format.allCases)
    func errorInsideAStreamBeforeContentFailsOver(_ format: Format) async throws {
        try await withServer { server in
            server.script("primary", .streamError(afterChunks: 0))
            server.script("backup", .text("backup answer"))
            let chain = FallbackChain([format.provider(server, model: "primary"), format.provider(server, model: "backup")], configuration: config())
            let response = try await chain.stream("hi").collect()
            #expect(response.content == "backup answer")
        }
    }
}
