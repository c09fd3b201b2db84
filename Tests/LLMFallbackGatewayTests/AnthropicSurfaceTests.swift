import Foundation
import LLMFallback
import LLMFallbackGateway
import LLMFallbackTesting
import NIOHTTP1
import Testing

/// The Anthropic Messages surface (issue 15): Claude Code and the `anthropic` SDKs pointed at the gateway.
@Suite("Anthropic Messages surface")
struct AnthropicSurfaceTests {
    static let gatewayKey = "gateway-test-key"

    /// A Claude Code-shaped request: system blocks with cache_control, a dozen tools, metadata.user_id, thinking,
    /// a field of the future; streamed unless told otherwise.
    static func claudeCodeBody(model: String = "claude-sonnet-4-5-20250929", stream: Bool = true) -> String {
        let tools = (1...12).map { index in
            #"{"name":"tool_\#(index)","description":"Tool number \#(index)","input_schema":{"type":"object","properties":{"zeta":{"type":"string"},"alpha":{"type":"integer"}},"required":["zeta"]}}"#
        }.joined(separator: ",")
        return #"""
            {"model":"\#(model)","max_tokens":32000,
             "system":[{"type":"text","text":"You are Claude Code, Anthropic's official CLI for Claude."},
                       {"type":"text","text":"Follow the project's conventions.","cache_control":{"type":"ephemeral"}}],
             "messages":[{"role":"user","content":[{"type":"text","text":"List the files","cache_control":{"type":"ephemeral"}}]}],
             "tools":[\#(tools)],
             "metadata":{"user_id":"user_abc_account__session_123"},
             "thinking":{"type":"enabled","budget_tokens":4000},
             "context_management":{"edits":[]},
             "stream":\#(stream)}
            """#
    }

    static let claudeCodeHeaders: [(String, String)] = [
        ("x-api-key", gatewayKey),
        ("anthropic-version", "2023-06-01"),
        ("anthropic-beta", "claude-code-20250219,interleaved-thinking-2025-05-14"),
        ("anthropic-beta", "fine-grained-tool-streaming-2025-05-14"),
    ]

    static func anthropicProvider(on server: MockLLMServer, name: String = "claude", model: String = "claude-upstream") -> Provider {
        var provider = Provider("anthropic", model: model, apiKey: secretKey, baseURL: server.baseURL, timeout: .seconds(10), maxRetries: 0)
        provider.name = name
        return provider
    }

    static var configuration: GatewayConfiguration {
        var configuration = GatewayConfiguration()
        configuration.apiKeys = [gatewayKey]
        configuration.modelRouting = ModelRouting(aliases: ["claude": ["claude-*"]])
        return configuration
    }

    /// A chain: an Anthropic primary, then an OpenAI-compatible backup.
    static func chains(_ server: MockLLMServer) -> [String: FallbackChain] {
        var configuration = FallbackChain.Configuration()
        configuration.retry.maxRetryAfterWait = .zero
        return ["claude": FallbackChain([anthropicProvider(on: server), mockProvider("backup", model: "model-backup", on: server)], configuration: configuration)]
    }

    /// The `event:` names of an Anthropic stream, in order.
    static func eventNames(_ body: String) -> [String] {
        body.components(separatedBy: "\n\n").compactMap { block in
            block.split(separator: "\n").first { $0.hasPrefix("event:") }.map { String($0.dropFirst("event:".count)).trimmingCharacters(in: .whitespaces) }
        }
    }

    @Test("passthrough: an Anthropic provider gets the client's body with only model changed, and its betas and version")
    func passthroughKeepsEverything() async throws {
        try await withGateway(configuration: Self.configuration, chains: Self.chains) { server, gateway in
            let body = Self.claudeCodeBody()
            let answer = try await gateway.send(.POST, "/v1/messages?beta=true", body: body, headers: Self.claudeCodeHeaders)
            #expect(answer.status == 200, "\(answer.body)")
            #expect(answer.headers.first(name: "x-llm-fallback-provider") == "anthropic")
            #expect(answer.headers.first(name: "request-id")?.hasPrefix("req_") == true)
            #expect(answer.headers.first(name: "x-llm-fallback-dropped-params") == nil)
            let sent = try #require(server.requests(for: "claude-upstream").last)
            #expect(sent.path == "/v1/messages")
            let header = { (name: String) in sent.headers.first { $0.name.lowercased() == name }?.value }
            #expect(header("anthropic-beta") == "claude-code-20250219,interleaved-thinking-2025-05-14,fine-grained-tool-streaming-2025-05-14")
            #expect(header("anthropic-version") == "2023-06-01")
            #expect(header("x-api-key") == secretKey, "the provider's key goes upstream, never the client's")
            var upstream = try #require(try JSONValue(parsing: Data(sent.body)).members)
            var client = try #require(try JSONValue(parsing: body).members)
            #expect(upstream["model"] == "claude-upstream")
            upstream.removeValue(forKey: "model")
            client.removeValue(forKey: "model")
            #expect(upstream == client, "\(upstream) != \(client)")
            // Relayed as the provider sent it: its own event grammar.
            let names = Self.eventNames(answer.body)
            #expect(names.first == "message_start")
            #expect(names.last == "message_stop")
            // Counted on the gateway's metrics beside the OpenAI surface.
            let metrics = try await gateway.send(.GET, "/metrics", headers: [("x-api-key", Self.gatewayKey)])
            // (The registry is shared by every gateway of the test process: the count is at least this one.)
            let counted = metrics.body.split(separator: "\n").first { $0.contains(#"llm_fallback_gateway_requests_total{route="messages",status="200"}"#) }
            let count: Int? = counted.flatMap { line in line.split(separator: " ").last.flatMap { Int($0) } }
            #expect((count ?? 0) >= 1, "\(metrics.body.prefix(2000))")
        }
    }

    /// An Anthropic stream with what the neutral model does not hold: a thinking block and its signature, pings,
    /// an event type of the future, a server tool block.
    static let richStream = [
        #"event: message_start\#ndata: {"type":"message_start","message":{"id":"msg_up","type":"message","role":"assistant","model":"claude-upstream","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":25,"cache_read_input_tokens":7,"output_tokens":1}}}\#n\#n"#,
        #"event: content_block_start\#ndata: {"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":"","signature":""}}\#n\#n"#,
        #"event: ping\#ndata: {"type": "ping"}\#n\#n"#,
        #"event: content_block_delta\#ndata: {"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"Let me think."}}\#n\#n"#,
        #"event: content_block_delta\#ndata: {"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxDYjMAbi4v"}}\#n\#n"#,
        #"event: content_block_stop\#ndata: {"type":"content_block_stop","index":0}\#n\#n"#,
        #"event: content_block_start\#ndata: {"type":"content_block_start","index":1,"content_block":{"type":"text","text":""}}\#n\#n"#,
        #"event: content_block_delta\#ndata: {"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"Hello"}}\#n\#n"#,
        #"event: a_future_event\#ndata: {"type":"a_future_event","x":{"z":1,"a":2}}\#n\#n"#,
        #"event: content_block_delta\#ndata: {"type":"content_block_delta","index":1,"delta":{"type":"citations_delta","citation":{"type":"char_location","cited_text":"x"}}}\#n\#n"#,
        #"event: content_block_stop\#ndata: {"type":"content_block_stop","index":1}\#n\#n"#,
        #"event: message_delta\#ndata: {"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":12}}\#n\#n"#,
        #"event: message_stop\#ndata: {"type":"message_stop"}\#n\#n"#,
    ]

    @Test("a passthrough stream reaches the client byte for byte: thinking, signatures, pings, events of the future")
    func passthroughStreamIsRelayedExactly() async throws {
        try await withGateway(configuration: Self.configuration, chains: Self.chains) { server, gateway in
            server.script("claude-upstream", .raw(status: 200, headers: ["content-type": "text/event-stream"], parts: Self.richStream))
            let answer = try await gateway.send(.POST, "/v1/messages", body: Self.claudeCodeBody(), headers: Self.claudeCodeHeaders)
            #expect(answer.status == 200, "\(answer.body)")
            #expect(answer.body == Self.richStream.joined())
        }
    }

    @Test("a passthrough stream cut after its thinking but before any text fails over, unseen, to the backup")
    func passthroughStreamCutBeforeTextFailsOver() async throws {
        try await withGateway(configuration: Self.configuration, chains: Self.chains) { server, gateway in
            server.script("claude-upstream", .raw(status: 200, headers: ["content-type": "text/event-stream"], parts: Array(Self.richStream.prefix(6))))
            server.script("model-backup", .text("Backup answer", chunks: 2))
            let answer = try await gateway.send(.POST, "/v1/messages", body: Self.claudeCodeBody(), headers: Self.claudeCodeHeaders)
            #expect(answer.status == 200, "\(answer.body)")
            #expect(answer.headers.first(name: "x-llm-fallback-provider") == "backup")
            #expect(!answer.body.contains("thinking"), "nothing of the broken attempt reaches the client")
            let names = Self.eventNames(answer.body)
            #expect(names.filter { $0 == "message_start" }.count == 1)
            #expect(names.last == "message_stop")
        }
    }

    @Test("a provider slow to its first token: the head, one message_start and pings keep the client, relayed or translated")
    func keepAlivesWhileAProviderThinks() async throws {
        var configuration = Self.configuration
        configuration.streamKeepAlive = .milliseconds(40)
        for upstream in ["claude-upstream", "model-backup"] {
            try await withGateway(configuration: configuration, chains: Self.chains) { server, gateway in
                if upstream == "model-backup" {
                    server.script("claude-upstream", .status(529, message: "Overloaded", type: "overloaded_error"))
                }
                server.script(upstream, .delayed(.milliseconds(400), .text("Late but whole", chunks: 2)))
                let answer = try await gateway.send(.POST, "/v1/messages", body: Self.claudeCodeBody(), headers: Self.claudeCodeHeaders)
                #expect(answer.status == 200, "\(answer.body)")
                let names = Self.eventNames(answer.body)
                #expect(names.first == "message_start", "\(upstream): \(names)")
                #expect(names.filter { $0 == "message_start" }.count == 1, "\(upstream): \(names)")
                #expect(names.prefix(3).contains("ping"), "\(upstream): \(names)")
                #expect(names.last == "message_stop", "\(upstream): \(names)")
                let events = answer.events.compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
                #expect(events.compactMap { ($0["delta"] as? [String: Any])?["text"] as? String }.joined() == "Late but whole")
            }
        }
    }

    @Test("a stream whose head went out with keep-alives and whose providers all fail ends with an error event")
    func keepAliveThenTotalFailure() async throws {
        var configuration = Self.configuration
        configuration.streamKeepAlive = .milliseconds(40)
        try await withGateway(configuration: configuration, chains: Self.chains) { server, gateway in
            server.script("claude-upstream", .delayed(.milliseconds(300), .status(529, message: "Overloaded", type: "overloaded_error")))
            server.script("model-backup", .status(503, message: "down"))
            let answer = try await gateway.send(.POST, "/v1/messages", body: Self.claudeCodeBody(), headers: Self.claudeCodeHeaders)
            #expect(answer.status == 200)
            let names = Self.eventNames(answer.body)
            #expect(names.first == "message_start" && names.last == "error", "\(names)")
            #expect(!names.contains("message_stop"))
        }
    }

    @Test("an assistant turn's thinking block goes to an Anthropic provider whole, and is dropped and reported across formats")
    func thinkingBlocksStayWhereTheyWereMade() async throws {
        try await withGateway(configuration: Self.configuration, chains: Self.chains) { server, gateway in
            let body = #"""
                {"model":"claude-sonnet-4-5","max_tokens":2048,"thinking":{"type":"enabled","budget_tokens":1024},
                 "messages":[{"role":"user","content":"Hi"},
                  {"role":"assistant","content":[{"type":"thinking","thinking":"Hmm.","signature":"c2lnbmF0dXJl"},{"type":"text","text":"Hello"}]},
                  {"role":"user","content":"Again"}]}
                """#
            let direct = try await gateway.send(.POST, "/v1/messages", body: body, headers: Self.claudeCodeHeaders)
            #expect(direct.status == 200)
            let sentDirect = try #require(server.requests(for: "claude-upstream").last)
            #expect(String(decoding: sentDirect.body, as: UTF8.self).contains(#""signature":"c2lnbmF0dXJl""#))
            server.script("claude-upstream", .status(529, message: "Overloaded", type: "overloaded_error"))
            let crossed = try await gateway.send(.POST, "/v1/messages", body: body, headers: Self.claudeCodeHeaders)
            #expect(crossed.status == 200, "\(crossed.body)")
            let dropped = crossed.headers.first(name: "x-llm-fallback-dropped-params") ?? ""
            #expect(dropped.contains("thinking"), "\(dropped)")
            let sent = try #require(server.requests(for: "model-backup").last)
            let text = String(decoding: sent.body, as: UTF8.self)
            #expect(!text.contains("c2lnbmF0dXJl") && !text.contains("Hmm."), "\(text)")
            #expect(text.contains(#""reasoning_effort":"minimal""#), "the thinking budget maps to an effort: \(text)")
        }
    }

    @Test("a failed tool's result keeps its is_error where the format has one (Gemini's error), and is reported where not")
    func toolResultErrorsAcrossFormats() async throws {
        let body = #"""
            {"model":"claude-haiku-4-5","max_tokens":64,
             "tools":[{"name":"read","input_schema":{"type":"object"}}],
             "messages":[{"role":"user","content":"Read it"},
               {"role":"assistant","content":[{"type":"tool_use","id":"toolu_9","name":"read","input":{}}]},
               {"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_9","is_error":true,"content":"ENOENT"}]}]}
            """#
        for kind in ["gemini", "openai"] {
            try await withGateway(configuration: Self.configuration, chains: { server in
                var backup = kind == "gemini"
                    ? Provider("gemini", model: "gemini-backup", apiKey: secretKey, baseURL: server.baseURL, timeout: .seconds(10), maxRetries: 0)
                    : Provider("openai", model: "gpt-backup", apiKey: secretKey, baseURL: server.openAIBaseURL, timeout: .seconds(10), maxRetries: 0)
                backup.name = "backup"
                return ["claude": FallbackChain([backup])]
            }) { server, gateway in
                let answer = try await gateway.send(.POST, "/v1/messages", body: body, headers: Self.claudeCodeHeaders)
                #expect(answer.status == 200, "\(answer.body)")
                let sent = try #require(server.requests.last)
                let text = String(decoding: sent.body, as: UTF8.self)
                let dropped = answer.headers.first(name: "x-llm-fallback-dropped-params") ?? ""
                if kind == "gemini" {
                    #expect(text.contains(#""response":{"error":"ENOENT"}"#), "\(text)")
                    #expect(!dropped.contains("is_error"))
                } else {
                    #expect(text.contains("ENOENT"))
                    #expect(dropped.contains("tool_result.is_error"), "\(dropped)")
                }
            }
        }
    }

    @Test("non-streamed passthrough relays the provider's message; the same request fails over to OpenAI translated")
    func nonStreamedAndCrossFormat() async throws {
        try await withGateway(configuration: Self.configuration, chains: Self.chains) { server, gateway in
            let body = Self.claudeCodeBody(stream: false)
            let direct = try await gateway.send(.POST, "/v1/messages", body: body, headers: Self.claudeCodeHeaders)
            #expect(direct.status == 200, "\(direct.body)")
            #expect(direct.json["type"] as? String == "message")
            #expect(direct.json["role"] as? String == "assistant")

            server.script("claude-upstream", .status(529, message: "Overloaded", type: "overloaded_error"))
            let failedOver = try await gateway.send(.POST, "/v1/messages", body: body, headers: Self.claudeCodeHeaders)
            #expect(failedOver.status == 200, "\(failedOver.body)")
            #expect(failedOver.headers.first(name: "x-llm-fallback-provider") == "backup")
            #expect(failedOver.json["type"] as? String == "message")
            #expect((failedOver.json["id"] as? String)?.hasPrefix("msg_") == true)
            let content = try #require(failedOver.json["content"] as? [[String: Any]])
            #expect(content.first?["type"] as? String == "text")
            #expect(failedOver.json["stop_reason"] as? String == "end_turn")
            #expect((failedOver.json["usage"] as? [String: Any])?["output_tokens"] != nil)
            let dropped = try #require(failedOver.headers.first(name: "x-llm-fallback-dropped-params"))
            #expect(dropped.contains("context_management"), "\(dropped)")
            #expect(dropped.contains("cache_control"), "\(dropped)")
            // The backup got the translation: system first, tools as functions, no Anthropic-only fields.
            let sent = try #require(server.requests(for: "model-backup").last)
            let upstream = try #require(try JSONValue(parsing: Data(sent.body)).members)
            #expect(upstream["model"] == "model-backup")
            #expect(upstream["context_management"] == nil && upstream["thinking"] == nil && upstream["system"] == nil)
            #expect(upstream["tools"]?.arrayValue?.count == 12)
            let messages = try #require(upstream["messages"]?.arrayValue)
            #expect(messages.first?.objectValue?["role"] == "system")
        }
    }

    @Test("a stream that fails over before its first content is translated in Anthropic's exact event grammar")
    func crossFormatStream() async throws {
        try await withGateway(configuration: Self.configuration, chains: Self.chains) { server, gateway in
            server.script("claude-upstream", .status(529, message: "Overloaded", type: "overloaded_error"))
            server.script("model-backup", .text("Hello from the backup", chunks: 4, usage: (prompt: 12, completion: 5)))
            let answer = try await gateway.send(.POST, "/v1/messages", body: Self.claudeCodeBody(), headers: Self.claudeCodeHeaders)
            #expect(answer.status == 200, "\(answer.body)")
            #expect(answer.headers.first(name: "content-type") == "text/event-stream")
            let names = Self.eventNames(answer.body)
            #expect(names.first == "message_start")
            #expect(names.suffix(3) == ["content_block_stop", "message_delta", "message_stop"], "\(names)")
            #expect(names.filter { $0 == "content_block_start" }.count == 1)
            let events = answer.events.compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
            let text = events.compactMap { ($0["delta"] as? [String: Any])?["text"] as? String }.joined()
            #expect(text == "Hello from the backup")
            let delta = try #require(events.first { $0["type"] as? String == "message_delta" })
            #expect((delta["delta"] as? [String: Any])?["stop_reason"] as? String == "end_turn")
            #expect((delta["usage"] as? [String: Any])?["output_tokens"] as? Int == 5)
        }
    }

    @Test("a stream cut after its first content ends with an Anthropic error event, never a clean message_stop")
    func midStreamFailureIsAnErrorEvent() async throws {
        for upstream in ["claude-upstream", "model-backup"] {
            try await withGateway(configuration: Self.configuration, chains: Self.chains) { server, gateway in
                if upstream == "model-backup" {
                    server.script("claude-upstream", .status(529, message: "Overloaded", type: "overloaded_error"))
                }
                server.script(upstream, .cutStream(afterChunks: 2, text: "one two three four five six"))
                let answer = try await gateway.send(.POST, "/v1/messages", body: Self.claudeCodeBody(), headers: Self.claudeCodeHeaders)
                #expect(answer.status == 200, "\(answer.body)")
                let names = Self.eventNames(answer.body)
                #expect(names.last == "error", "\(upstream): \(names)")
                #expect(!names.contains("message_stop"), "\(upstream): \(names)")
                let last = try #require(answer.events.last.flatMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] })
                #expect(last["type"] as? String == "error")
                #expect((last["error"] as? [String: Any])?["type"] as? String == "api_error")
            }
        }
    }

    @Test("tool use crosses formats: tool_use and tool_result in, a tool_use block with its input out")
    func toolUseAcrossFormats() async throws {
        try await withGateway(configuration: Self.configuration, chains: Self.chains) { server, gateway in
            server.script("claude-upstream", [.status(529, message: "Overloaded", type: "overloaded_error"), .status(529, message: "Overloaded", type: "overloaded_error")])
            server.script("model-backup", [.toolCall(name: "get_weather", arguments: #"{"city":"Paris"}"#), .toolCall(name: "get_weather", arguments: #"{"city":"Paris"}"#)])
            let body = #"""
                {"model":"claude-haiku-4-5","max_tokens":512,"stop_sequences":["END"],"temperature":0.2,
                 "tools":[{"name":"get_weather","input_schema":{"type":"object","properties":{"city":{"type":"string"}}}}],
                 "tool_choice":{"type":"any"},
                 "messages":[{"role":"user","content":"Weather?"},
                   {"role":"assistant","content":[{"type":"tool_use","id":"toolu_1","name":"get_weather","input":{"city":"Rome"}}]},
                   {"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_1","content":"sunny"}]}]}
                """#
            let answer = try await gateway.send(.POST, "/v1/messages", body: body, headers: Self.claudeCodeHeaders)
            #expect(answer.status == 200, "\(answer.body)")
            #expect(answer.json["stop_reason"] as? String == "tool_use")
            let block = try #require((answer.json["content"] as? [[String: Any]])?.first { $0["type"] as? String == "tool_use" })
            #expect(block["name"] as? String == "get_weather")
            #expect((block["input"] as? [String: Any])?["city"] as? String == "Paris")
            let sent = try #require(server.requests(for: "model-backup").last)
            let upstream = try #require(try JSONValue(parsing: Data(sent.body)).members)
            #expect(upstream["tool_choice"] == "required")
            #expect(upstream["stop"] == ["END"])
            #expect(upstream["max_tokens"] == 512)
            let messages = try #require(upstream["messages"]?.arrayValue)
            #expect(messages.last?.objectValue?["role"] == "tool")
            #expect(messages.last?.objectValue?["tool_call_id"] == "toolu_1")

            let streamed = try await gateway.send(.POST, "/v1/messages", body: body.replacingOccurrences(of: #""max_tokens":512"#, with: #""max_tokens":512,"stream":true"#), headers: Self.claudeCodeHeaders)
            let events = streamed.events.compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
            let start = try #require(events.first { ($0["content_block"] as? [String: Any])?["type"] as? String == "tool_use" })
            #expect((start["content_block"] as? [String: Any])?["name"] as? String == "get_weather")
            let json = events.compactMap { ($0["delta"] as? [String: Any])?["partial_json"] as? String }.joined()
            #expect(json == #"{"city":"Paris"}"#)
        }
    }

    @Test("errors come in Anthropic's format with honest statuses and a request-id")
    func errors() async throws {
        var configuration = Self.configuration
        configuration.maxBodySize = 64 * 1024
        try await withGateway(configuration: configuration, chains: Self.chains) { server, gateway in
            func check(_ answer: HTTPAnswer, status: Int, type: String, _ what: String) {
                #expect(answer.status == status, "\(what): \(answer.body)")
                #expect(answer.json["type"] as? String == "error", "\(what)")
                #expect((answer.json["error"] as? [String: Any])?["type"] as? String == type, "\(what): \(answer.body)")
                #expect(answer.headers.first(name: "request-id")?.hasPrefix("req_") == true, "\(what)")
                #expect(answer.json["request_id"] as? String == answer.headers.first(name: "request-id"), "\(what)")
                #expect(!answer.body.contains(secretKey))
            }
            let body = #"{"model":"claude-x","max_tokens":10,"messages":[{"role":"user","content":"Hi"}]}"#
            check(try await gateway.send(.POST, "/v1/messages", body: body), status: 401, type: "authentication_error", "no key")
            check(try await gateway.send(.POST, "/v1/messages", body: body, headers: [("x-api-key", "wrong")]), status: 401, type: "authentication_error", "wrong key")
            let bearer = try await gateway.send(.POST, "/v1/messages", body: body, bearer: Self.gatewayKey)
            #expect(bearer.status == 200, "Authorization: Bearer is accepted too: \(bearer.body)")
            let headers = [("x-api-key", Self.gatewayKey)]
            check(try await gateway.send(.POST, "/v1/messages", body: #"{"model":"claude-x","messages":[]}"#, headers: headers), status: 400, type: "invalid_request_error", "no max_tokens")
            check(try await gateway.send(.POST, "/v1/messages", body: #"{"model":"a","model":"b"}"#, headers: headers), status: 400, type: "invalid_request_error", "duplicate key")
            check(try await gateway.send(.POST, "/v1/messages", body: body.replacingOccurrences(of: "claude-x", with: "gpt-unknown"), headers: headers), status: 404, type: "not_found_error", "unknown model")
            check(try await gateway.send(.POST, "/v1/messages", body: String(repeating: " ", count: 70 * 1024) + body, headers: headers), status: 413, type: "request_too_large", "too large")
            check(try await gateway.send(.GET, "/v1/messages", headers: headers), status: 405, type: "invalid_request_error", "GET")

            server.script("claude-upstream", .status(529, message: "Overloaded", type: "overloaded_error"))
            server.script("model-backup", .status(503, message: "Overloaded", type: "server_error"))
            let overloaded = try await gateway.send(.POST, "/v1/messages", body: body, headers: headers)
            check(overloaded, status: 529, type: "overloaded_error", "every provider overloaded")

            server.script("claude-upstream", .status(429, message: "slow down", type: "rate_limit_error", headers: ["retry-after": "7"]))
            server.script("model-backup", .status(429, message: "slow down", headers: ["retry-after": "9"]))
            let limited = try await gateway.send(.POST, "/v1/messages", body: body, headers: headers)
            check(limited, status: 429, type: "rate_limit_error", "every provider rate limited")
            #expect(limited.headers.first(name: "retry-after") != nil)

            server.script("claude-upstream", .status(400, message: "messages: bad", type: "invalid_request_error"))
            check(try await gateway.send(.POST, "/v1/messages", body: body, headers: headers), status: 400, type: "invalid_request_error", "refused by the provider")
        }
    }

    @Test("count_tokens: counted by the Anthropic provider, else an estimate that says so; never a silent zero")
    func countTokens() async throws {
        try await withGateway(configuration: Self.configuration, chains: Self.chains) { server, gateway in
            let body = #"{"model":"claude-sonnet-4-5","system":"Be brief.","messages":[{"role":"user","content":"Hello there, how are you today?"}],"tools":[{"name":"t","input_schema":{"type":"object"}}],"thinking":{"type":"enabled","budget_tokens":2048}}"#
            server.script("claude-upstream", .raw(status: 200, body: #"{"input_tokens":1234}"#))
            let counted = try await gateway.send(.POST, "/v1/messages/count_tokens?beta=true", body: body, headers: Self.claudeCodeHeaders)
            #expect(counted.status == 200, "\(counted.body)")
            #expect(counted.json["input_tokens"] as? Int == 1234)
            #expect(counted.headers.first(name: "x-llm-fallback-token-count") == "counted")
            let sent = try #require(server.requests(for: "claude-upstream").last)
            #expect(sent.path == "/v1/messages/count_tokens")
            let upstream = try #require(try JSONValue(parsing: Data(sent.body)).members)
            #expect(upstream["model"] == "claude-upstream")
            #expect(upstream["max_tokens"] == nil && upstream["thinking"] != nil)
            #expect(sent.headers.contains { $0.name.lowercased() == "anthropic-beta" })

            // The provider fails: the next Anthropic provider would count; there is none, so an estimate.
            server.script("claude-upstream", .status(500, message: "boom"))
            let estimated = try await gateway.send(.POST, "/v1/messages/count_tokens", body: body, headers: Self.claudeCodeHeaders)
            #expect(estimated.status == 200, "\(estimated.body)")
            #expect(estimated.headers.first(name: "x-llm-fallback-token-count") == "estimate")
            let estimate = try #require(estimated.json["input_tokens"] as? Int)
            #expect(estimate > 5)

            // The provider refuses the request itself: the client's error, not an estimate.
            server.script("claude-upstream", .status(400, message: "messages: bad", type: "invalid_request_error"))
            let refused = try await gateway.send(.POST, "/v1/messages/count_tokens", body: body, headers: Self.claudeCodeHeaders)
            #expect(refused.status == 400)
            #expect((refused.json["error"] as? [String: Any])?["type"] as? String == "invalid_request_error")
        }
    }

    @Test("a chain without an Anthropic provider estimates the count and says so")
    func countTokensWithoutAnthropic() async throws {
        var configuration = Self.configuration
        configuration.modelRouting = ModelRouting(aliases: [:], defaultChain: "default")
        try await withGateway(configuration: configuration, chains: { ["default": mockChain(on: $0)] }) { server, gateway in
            let body = #"{"model":"claude-opus-4-1","messages":[{"role":"user","content":"Hi"}]}"#
            let answer = try await gateway.send(.POST, "/v1/messages/count_tokens", body: body, headers: Self.claudeCodeHeaders)
            #expect(answer.status == 200, "\(answer.body)")
            #expect(answer.headers.first(name: "x-llm-fallback-token-count") == "estimate")
            #expect((answer.json["input_tokens"] as? Int ?? 0) > 0)
            #expect(server.requests.isEmpty)
        }
    }

    @Test("the Claude Code-shaped request succeeds through each kind of backup")
    func claudeCodeThroughEveryBackup() async throws {
        for kind in ["openai", "gemini", "anthropic"] {
            try await withGateway(configuration: Self.configuration, chains: { server in
                var backup: Provider
                switch kind {
                case "gemini": backup = Provider("gemini", model: "gemini-backup", apiKey: secretKey, baseURL: server.baseURL, timeout: .seconds(10), maxRetries: 0)
                case "anthropic": backup = Self.anthropicProvider(on: server, name: "claude-2", model: "claude-backup")
                default: backup = Provider("openai", model: "gpt-backup", apiKey: secretKey, baseURL: server.openAIBaseURL, timeout: .seconds(10), maxRetries: 0)
                }
                backup.name = "backup"
                return ["claude": FallbackChain([Self.anthropicProvider(on: server), backup])]
            }) { server, gateway in
                for stream in [true, false] {
                    server.script("claude-upstream", .status(529, message: "Overloaded", type: "overloaded_error"))
                    let answer = try await gateway.send(.POST, "/v1/messages?beta=true", body: Self.claudeCodeBody(stream: stream), headers: Self.claudeCodeHeaders)
                    #expect(answer.status == 200, "\(kind) stream=\(stream): \(answer.body)")
                    #expect(answer.headers.first(name: "x-llm-fallback-provider") == (kind == "gemini" ? "google" : kind), "\(kind)")
                    if stream {
                        let names = Self.eventNames(answer.body)
                        #expect(names.first == "message_start" && names.last == "message_stop", "\(kind): \(names)")
                    } else {
                        #expect(answer.json["type"] as? String == "message", "\(kind): \(answer.body)")
                    }
                }
            }
        }
    }
}
