import Foundation
import NIOCore
import NIOHTTP1
import Testing

@testable import LLMFallback

/// The server half of Anthropic Messages: requests decoded, answers, streams and errors encoded, and both halves
/// of the format each other's inverse.
@Suite struct AnthropicMessagesServerTests {
    static func provider(_ model: String = "claude-sonnet-4-5") throws -> ResolvedProvider {
        try Provider("anthropic", model: model, apiKey: "sk-ant-test").resolved()
    }

    /// The body the client half writes for `request`.
    static func clientBody(_ request: ChatRequest, stream: Bool = false) throws -> ByteBuffer {
        let parts = try AnthropicAdapter().makeRequest(request, for: try provider(), stream: stream)
        return try #require(parts.body)
    }

    /// The neutral fields alone: what a round trip must keep.
    static func neutral(_ request: ChatRequest) -> ChatRequest {
        var request = request
        request.passthrough = nil
        request.extraBody = [:]
        return request
    }

    static func decode(_ json: String) throws(WireRequestError) -> AnthropicMessagesServer.Request {
        try AnthropicMessagesServer.decodeRequest(ByteBuffer(string: json))
    }

    // MARK: - Decoding requests

    static let claudeCodeShaped = #"""
        {"model":"claude-sonnet-4-5-20250929","max_tokens":32000,"stream":true,
         "system":[{"type":"text","text":"You are Claude Code.","cache_control":{"type":"ephemeral"}},{"type":"text","text":"Be brief."}],
         "messages":[
          {"role":"user","content":[{"type":"text","text":"List files"},{"type":"image","source":{"type":"base64","media_type":"image/png","data":"iVBORw0KGgo="}}]},
          {"role":"assistant","content":[{"type":"thinking","thinking":"Use ls.","signature":"EqQB"},{"type":"text","text":"Running ls."},
            {"type":"tool_use","id":"toolu_01","name":"Bash","input":{"command":"ls","description":"list","timeout":12345678901234567890}}]},
          {"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_01","content":[{"type":"text","text":"a.txt\n"},{"type":"text","text":"b.txt"}],"is_error":false},
            {"type":"text","text":"Thanks","cache_control":{"type":"ephemeral"}}]}
         ],
         "tools":[{"name":"Bash","description":"Run a command","input_schema":{"type":"object","properties":{"command":{"type":"string"},"description":{"type":"string"},"timeout":{"type":"number"}},"required":["command"]}},
                  {"type":"web_search_20250305","name":"web_search","max_uses":5}],
         "tool_choice":{"type":"auto","disable_parallel_tool_use":true},
         "metadata":{"user_id":"user_abc_account_def_session_1"},
         "thinking":{"type":"enabled","budget_tokens":10000},
         "top_k":40,
         "stop_sequences":["\n\nHuman:"],
         "future_field":{"x":1}}
        """#

    @Test func decodesAClaudeCodeShapedRequest() throws {
        let decoded = try Self.decode(Self.claudeCodeShaped)
        #expect(decoded.model == "claude-sonnet-4-5-20250929")
        #expect(decoded.stream)
        let request = decoded.request
        #expect(request.messages == [
            .system("You are Claude Code."),
            .system("Be brief."),
            .user([.text("List files"), .image(.base64("iVBORw0KGgo=", mediaType: "image/png"))]),
            .assistant("Running ls.", toolCalls: [
                ToolCall(id: "toolu_01", name: "Bash", arguments: #"{"command":"ls","description":"list","timeout":12345678901234567890}"#)
            ]),
            .tool(callID: "toolu_01", content: "a.txt\nb.txt"),
            .user("Thanks"),
        ])
        #expect(request.tools.count == 1)
        #expect(request.tools[0].name == "Bash")
        #expect(request.tools[0].parameters["properties"]?.members?.keys == ["command", "description", "timeout"])
        #expect(request.toolChoice == .auto)
        #expect(request.parallelToolCalls == false)
        #expect(request.maxTokens == 32000)
        #expect(request.user == "user_abc_account_def_session_1")
        #expect(request.reasoningEffort == .medium)
        #expect(request.stop == ["\n\nHuman:"])
        #expect(decoded.unmappedContent == ["cache_control", "content.thinking", "tools.web_search_20250305"])
        let passthrough = try #require(request.passthrough)
        #expect(passthrough.format == .anthropic)
        #expect(passthrough.unmodelledKeys == ["top_k", "future_field"])
        #expect(passthrough.messageCount == 6)
        #expect(JSONValue.object(passthrough.body) == (try JSONValue(parsing: Self.claudeCodeShaped)))
    }

    @Test(arguments: [(1024, ReasoningEffort.minimal), (1500, .minimal), (1600, .low), (2048, .low), (5000, .low), (5200, .medium),
                      (8192, .medium), (16000, .medium), (16500, .high), (64000, .high), (0, .minimal), (Int.max, .high)])
    func thinkingBudgetsMapToTheNearestEffort(budget: Int, effort: ReasoningEffort) throws {
        let decoded = try Self.decode(
            #"{"model":"m","max_tokens":1,"messages":[{"role":"user","content":"Hi"}],"thinking":{"type":"enabled","budget_tokens":\#(budget)}}"#)
        #expect(decoded.request.reasoningEffort == effort)
    }

    @Test func disabledThinkingIsNoEffortAndAdaptiveIsUnmodelled() throws {
        let disabled = try Self.decode(#"{"model":"m","max_tokens":1,"messages":[{"role":"user","content":"Hi"}],"thinking":{"type":"disabled"}}"#)
        #expect(disabled.request.reasoningEffort == nil)
        #expect(disabled.request.passthrough?.unmodelledKeys == [])
        let adaptive = try Self.decode(#"{"model":"m","max_tokens":1,"messages":[{"role":"user","content":"Hi"}],"thinking":{"type":"adaptive"}}"#)
        #expect(adaptive.request.reasoningEffort == nil)
        #expect(adaptive.request.passthrough?.unmodelledKeys == ["thinking"])
    }

    @Test func toolChoicesAndOutputFormats() throws {
        let base = #""model":"m","max_tokens":5,"messages":[{"role":"user","content":"Hi"}],"tools":[{"name":"f","input_schema":{"type":"object"}}]"#
        #expect(try Self.decode(#"{\#(base),"tool_choice":{"type":"any"}}"#).request.toolChoice == .required)
        #expect(try Self.decode(#"{\#(base),"tool_choice":{"type":"none"}}"#).request.toolChoice == ToolChoice.none)
        #expect(try Self.decode(#"{\#(base),"tool_choice":{"type":"tool","name":"f"}}"#).request.toolChoice == .tool("f"))
        let parallel = try Self.decode(#"{\#(base),"tool_choice":{"type":"auto","disable_parallel_tool_use":false}}"#).request
        #expect(parallel.parallelToolCalls == nil)
        let schema = #"{"type":"object","properties":{"z":{"type":"string"},"a":{"type":"string"}}}"#
        let beta = try Self.decode(#"{\#(base),"output_format":{"type":"json_schema","schema":\#(schema)}}"#).request
        #expect(beta.responseFormat == .jsonSchema(name: "response", schema: try JSONValue(parsing: schema)))
        let ga = try Self.decode(#"{\#(base),"output_config":{"format":{"type":"json_schema","schema":\#(schema)},"effort":"high"}}"#)
        #expect(ga.request.responseFormat == .jsonSchema(name: "response", schema: try JSONValue(parsing: schema)))
        #expect(ga.request.passthrough?.unmodelledKeys == ["output_config"])
    }

    @Test func toolResultsWithImagesErrorsAndTheIDsStateComeThrough() throws {
        let state = ProviderState(origin: "gemini:gemini-3-pro-preview", value: "SIG")
        let id = ProviderState.encodedID("call_0", state: state)
        let decoded = try Self.decode(#"""
            {"model":"m","max_tokens":5,"messages":[
             {"role":"user","content":"Look"},
             {"role":"assistant","content":[{"type":"tool_use","id":"\#(id)","name":"shot","input":{}}]},
             {"role":"user","content":[{"type":"tool_result","tool_use_id":"\#(id)","is_error":true,
               "content":[{"type":"text","text":"see"},{"type":"image","source":{"type":"url","url":"https://example.com/s.png"}},{"type":"document","source":{}}]}]}]}
            """#)
        #expect(decoded.request.messages[1].toolCalls == [ToolCall(id: "call_0", name: "shot", arguments: "{}", providerState: state)])
        var failed = Message(role: .tool, content: .parts([.text("see"), .image(.url("https://example.com/s.png"))]), toolCallID: "call_0")
        failed.isError = true
        #expect(decoded.request.messages[2] == failed)
        #expect(decoded.unmappedContent == ["content.document"])
    }

    struct BadBody: Sendable, CustomTestStringConvertible {
        var body: String
        var param: String?
        var code: String?
        var says: String
        var testDescription: String { says }
    }

    static let ok = #""model":"m","max_tokens":5"#

    @Test(arguments: [
        BadBody(body: "", param: nil, code: nil, says: "empty"),
        BadBody(body: "{", param: nil, code: "invalid_json", says: "not valid JSON"),
        BadBody(body: "[]", param: "body", code: "invalid_type", says: "expected an object"),
        BadBody(body: #"{"max_tokens":5,"messages":[]}"#, param: "model", code: "missing_required_parameter", says: "'model'"),
        BadBody(body: #"{"model":"m","messages":[{"role":"user","content":"x"}]}"#, param: "max_tokens", code: "missing_required_parameter", says: "'max_tokens'"),
        BadBody(body: #"{\#(ok),"messages":[{"role":"user","content":"x"}],"max_tokens":6}"#, param: "max_tokens", code: "duplicate_key", says: "'max_tokens' appears twice"),
        BadBody(body: #"{"model":"m","max_tokens":0,"messages":[{"role":"user","content":"x"}]}"#, param: "max_tokens", code: "invalid_value", says: "at least 1"),
        BadBody(body: #"{\#(ok),"messages":[]}"#, param: "messages", code: "invalid_value", says: "at least one message"),
        BadBody(body: #"{\#(ok),"messages":[{"role":"system","content":"x"}]}"#, param: "messages[0].role", code: "invalid_value", says: "top-level 'system'"),
        BadBody(body: #"{\#(ok),"messages":[{"role":"user"}]}"#, param: "messages[0].content", code: "missing_required_parameter", says: "'messages[0].content'"),
        BadBody(body: #"{\#(ok),"messages":[{"role":"user","content":[{"text":"x"}]}]}"#, param: "messages[0].content[0].type", code: "missing_required_parameter", says: "'messages[0].content[0].type'"),
        BadBody(body: #"{\#(ok),"messages":[{"role":"user","content":[{"type":"tool_result","content":"x"}]}]}"#, param: "messages[0].content[0].tool_use_id", code: "missing_required_parameter", says: "tool_use_id"),
        BadBody(body: #"{\#(ok),"messages":[{"role":"assistant","content":[{"type":"tool_use","id":"t","name":"f","input":[1]}]}]}"#, param: "messages[0].content[0].input", code: "invalid_type", says: "expected an object, got an array"),
        BadBody(body: #"{\#(ok),"messages":[{"role":"user","content":[{"type":"tool_use","id":"t","name":"f","input":{}}]}]}"#, param: "messages[0].content[0].type", code: "invalid_value", says: "belong to assistant messages"),
        BadBody(body: #"{\#(ok),"messages":[{"role":"user","content":"x"}],"system":[{"type":"image"}]}"#, param: "system[0].type", code: "invalid_value", says: "system blocks are text blocks"),
        BadBody(body: #"{\#(ok),"messages":[{"role":"user","content":"x"}],"tools":[{"name":"f"}]}"#, param: "tools[0].input_schema", code: "missing_required_parameter", says: "input_schema"),
        BadBody(body: #"{\#(ok),"messages":[{"role":"user","content":"x"}],"tools":[{"name":"f","input_schema":{"type":"object","properties":{"a":1,"a":2}}}]}"#, param: "a", code: "duplicate_key", says: "'a' appears twice in an object"),
        BadBody(body: #"{\#(ok),"messages":[{"role":"user","content":"x"}],"tool_choice":{"type":"required"}}"#, param: "tool_choice.type", code: "invalid_value", says: "auto, any, tool or none"),
        BadBody(body: #"{\#(ok),"messages":[{"role":"user","content":"x"}],"temperature":"hot"}"#, param: "temperature", code: "invalid_type", says: "expected a number"),
        BadBody(body: #"{\#(ok),"messages":[{"role":"user","content":"x"}],"stop_sequences":[1]}"#, param: "stop_sequences[0]", code: "invalid_type", says: "expected a string"),
        BadBody(body: #"{\#(ok),"messages":[{"role":"user","content":"x"}],"thinking":{"type":"enabled"}}"#, param: "thinking.budget_tokens", code: "missing_required_parameter", says: "budget_tokens"),
        BadBody(body: #"{"model":"m","max_tokens":1e30,"messages":[{"role":"user","content":"x"}]}"#, param: "max_tokens", code: "invalid_type", says: "expected an integer"),
    ])
    func badBodiesAreRefusedWithWhatAndWhere(_ bad: BadBody) {
        do {
            let decoded = try Self.decode(bad.body)
            Issue.record("accepted: \(decoded.request)")
        } catch {
            #expect(error.param == bad.param)
            #expect(error.code == bad.code)
            #expect(error.message.contains(bad.says), "\(error.message)")
        }
    }

    // MARK: - Round trips

    /// The adapter's bodies, decoded by the server half, give back the request they were written from.
    @Test(arguments: 0..<300)
    func clientEncodeThenServerDecodeKeepsTheRequest(seed: Int) throws {
        var generator = WireCaseGenerator(.anthropic, seed: UInt64(seed))
        let request = generator.request(model: "claude-sonnet-4-5")
        let stream = seed % 2 == 0
        let decoded = try AnthropicMessagesServer.decodeRequest(try Self.clientBody(request, stream: stream))
        #expect(Self.neutral(decoded.request) == request, "seed \(seed)")
        #expect(decoded.stream == stream)
        #expect(decoded.model == "claude-sonnet-4-5")
        #expect(decoded.unmappedContent.isEmpty)
        #expect(decoded.request.passthrough?.unmodelledKeys == [])
    }

    /// The adapter's own fixtures, through the client half and back.
    @Test func theAdaptersFixturesComeBack() throws {
        let messages: [Message] = [
            .system("Use tools."),
            .user("Weather in Paris"),
            .assistant("Let me check.", toolCalls: [
                ToolCall(id: "toolu_1", name: "get_weather", arguments: #"{"city":"Paris"}"#),
                ToolCall(id: "toolu_2", name: "get_time", arguments: "{}"),
            ]),
            .tool(callID: "toolu_1", content: "18°C, sunny"),
            .tool(callID: "toolu_2", content: "14:05"),
            .user("Thanks"),
        ]
        let tools = [
            Tool(name: "get_weather", description: "Current weather",
                 parameters: ["type": "object", "properties": ["city": ["type": "string"]], "required": ["city"]]),
            Tool(name: "get_time"),
        ]
        let request = ChatRequest(messages: messages, temperature: 0.5, topP: 0.9, maxTokens: 100, stop: ["END"], tools: tools,
                                  toolChoice: .tool("get_weather"), parallelToolCalls: false, user: "user-123")
        let decoded = try AnthropicMessagesServer.decodeRequest(try Self.clientBody(request))
        #expect(Self.neutral(decoded.request) == request)
    }

    @Test func toolSchemasKeepTheirMemberOrder() throws {
        let schema = try JSONValue(parsing: #"{"type":"object","properties":{"zeta":{"type":"string"},"alpha":{"type":"number"},"mid":{"type":"object","properties":{"y":{"type":"string"},"b":{"type":"string"}}}},"required":["zeta"]}"#)
        let request = ChatRequest(messages: [.user("Hi")], maxTokens: 10, tools: [Tool(name: "t", parameters: schema)])
        let decoded = try AnthropicMessagesServer.decodeRequest(try Self.clientBody(request))
        #expect(decoded.request.tools[0].parameters == schema)
        #expect(decoded.request.tools[0].parameters.jsonString == schema.jsonString)
    }

    /// Answers encoded by the server half, decoded by the adapter, keep their content, calls, finish and usage.
    @Test(arguments: 0..<200)
    func serverEncodeThenClientDecodeKeepsTheResponse(seed: Int) throws {
        var generator = WireCaseGenerator(.anthropic, seed: UInt64(seed))
        let response = generator.response(model: "claude-sonnet-4-5")
        let body = AnthropicMessagesServer.encodeResponse(response, id: "msg_\(seed)", model: "claude-sonnet-4-5")
        let decoded = try AnthropicAdapter().decodeResponse(body, headers: [:], for: try Self.provider())
        #expect(decoded.content == response.content, "seed \(seed)")
        #expect(decoded.toolCalls == response.toolCalls, "seed \(seed)")
        #expect(decoded.finishReason == response.finishReason, "seed \(seed)")
        #expect(decoded.usage == response.usage, "seed \(seed)")
        #expect(decoded.id == "msg_\(seed)")
    }

    @Test func anAnswerIsAMessageObject() throws {
        var response = ChatResponse(
            content: "Checking.", toolCalls: [ToolCall(id: "toolu_1", name: "get_weather", arguments: #"{"unit":"c","city":"Paris"}"#)],
            finishReason: .toolCalls, usage: Usage(promptTokens: 115, completionTokens: 6, cachedTokens: 100), provider: "openai",
            model: "gpt-4o")
        let body = String(buffer: AnthropicMessagesServer.encodeResponse(response, id: "msg_1", model: "claude-sonnet-4-5"))
        #expect(body == #"{"id":"msg_1","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[{"type":"text","text":"Checking."},{"type":"tool_use","id":"toolu_1","name":"get_weather","input":{"unit":"c","city":"Paris"}}],"stop_reason":"tool_use","stop_sequence":null,"usage":{"input_tokens":15,"cache_read_input_tokens":100,"output_tokens":6}}"#)
        response.toolCalls = [ToolCall(id: "toolu_2", name: "f", arguments: "not json")]
        response.content = ""
        let fallback = try JSONValue(parsing: String(buffer: AnthropicMessagesServer.encodeResponse(response, id: "m", model: "c")))
        #expect(fallback["content"] == [["type": "tool_use", "id": "toolu_2", "name": "f", "input": [:]]])
        let empty = ChatResponse(content: "", provider: "p", model: "m")
        let emptyBody = try JSONValue(parsing: String(buffer: AnthropicMessagesServer.encodeResponse(empty, id: "m", model: "c")))
        #expect(emptyBody["content"] == [["type": "text", "text": ""]])
        #expect(emptyBody["stop_reason"] == "end_turn")
        #expect(emptyBody["usage"] == ["input_tokens": 0, "output_tokens": 0])
    }

    @Test func errorsAreAnthropicErrorObjects() throws {
        let body = AnthropicMessagesServer.encodeError(type: "overloaded_error", message: "Overloaded \"now\"")
        #expect(String(buffer: body) == #"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded \"now\""}}"#)
        let error = AnthropicAdapter().classifyError(status: 529, headers: [:], body: body)
        #expect(error.kind == .overloaded)
        #expect(error.message == "Overloaded \"now\"")
        let withID = AnthropicMessagesServer.encodeError(type: "api_error", message: "boom", requestID: "req_1")
        #expect(AnthropicAdapter().classifyError(status: 500, headers: [:], body: withID).requestID == "req_1")
        let event = AnthropicMessagesServer.StreamEncoder.errorEvent(type: "api_error", message: "cut")
        #expect(event == "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"api_error\",\"message\":\"cut\"}}\n\n")
    }

    // MARK: - Streams

    /// Encodes `chunks` and finishes the stream, as one text.
    static func encodeStream(_ chunks: [ChatChunk], inputTokens: Int = 0) -> String {
        var encoder = AnthropicMessagesServer.StreamEncoder(id: "msg_s", model: "claude-sonnet-4-5", inputTokens: inputTokens)
        var text = ""
        for chunk in chunks { text += encoder.encode(chunk).joined() }
        text += encoder.finish().joined()
        #expect(encoder.finish().isEmpty)
        #expect(encoder.encode(ChatChunk(content: "late")).isEmpty)
        return text
    }

    @Test(arguments: 0..<200)
    func serverStreamThenClientDecodeKeepsTheAnswer(seed: Int) throws {
        var generator = WireCaseGenerator(.anthropic, seed: UInt64(seed))
        let response = generator.response(model: "claude-sonnet-4-5")
        let chunks = generator.chunks(for: response)
        let stream = Self.encodeStream(chunks)
        let bytes = Array(stream.utf8)
        let split = bytes.isEmpty ? 0 : (seed * 7919) % bytes.count
        let summary = try StreamSummary.decode(
            stream, in: [Array(bytes[..<split]), Array(bytes[split...])], adapter: AnthropicAdapter(), provider: try Self.provider())
        #expect(summary.text == response.content, "seed \(seed)")
        var calls: [Int: StreamSummary.Call] = [:]
        for (index, call) in response.toolCalls.enumerated() { calls[index] = .init(id: call.id, name: call.name, arguments: call.arguments) }
        #expect(summary.toolCalls == calls, "seed \(seed)")
        #expect(summary.finishReasons == [response.finishReason].compactMap { $0 }, "seed \(seed)")
        #expect(summary.usage == response.usage, "seed \(seed)")
        #expect(summary.isComplete)
        #expect(summary.ids == ["msg_s"])
    }

    @Test func aStreamFollowsAnthropicsGrammar() throws {
        let chunks = [
            ChatChunk(content: "Hi"), ChatChunk(content: " there"),
            ChatChunk(toolCallDeltas: [ToolCallDelta(index: 0, id: "call_a", name: "f", arguments: #"{"a":"#)]),
            ChatChunk(toolCallDeltas: [ToolCallDelta(index: 0, arguments: "1}")]),
            ChatChunk(toolCallDeltas: [ToolCallDelta(index: 1, id: "call_b", name: "g")]),
            ChatChunk(finishReason: .toolCalls, usage: Usage(promptTokens: 20, completionTokens: 7)),
        ]
        let stream = Self.encodeStream(chunks, inputTokens: 20)
        let events = stream.components(separatedBy: "\n\n").filter { !$0.isEmpty }
        let names = events.map { $0.split(separator: "\n")[0] }
        #expect(names == [
            "event: message_start",
            "event: content_block_start", "event: content_block_delta", "event: content_block_delta", "event: content_block_stop",
            "event: content_block_start", "event: content_block_delta", "event: content_block_delta", "event: content_block_stop",
            "event: content_block_start", "event: content_block_stop",
            "event: message_delta", "event: message_stop",
        ])
        #expect(events[0] == #"event: message_start"# + "\n" + #"data: {"type":"message_start","message":{"id":"msg_s","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":20,"output_tokens":0}}}"#)
        #expect(events[5].hasSuffix(#"{"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"call_a","name":"f","input":{}}}"#))
        #expect(events[7].hasSuffix(#"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"1}"}}"#))
        #expect(events[11].hasSuffix(#"{"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"input_tokens":20,"output_tokens":7}}"#))
        for event in events {
            let lines = event.split(separator: "\n")
            #expect(lines.count == 2)
            let data = try JSONValue(parsing: String(lines[1].dropFirst("data: ".count)))
            #expect("event: " + (data["type"]?.stringValue ?? "") == lines[0])
        }
    }

    @Test func aFinishWithoutContentStillOpensAndClosesTheMessage() throws {
        var encoder = AnthropicMessagesServer.StreamEncoder(id: "m", model: "c")
        let events = encoder.finish(finishReason: .length, usage: nil)
        #expect(events.count == 3)
        #expect(events[1].contains(#""stop_reason":"max_tokens""#))
        #expect(events[1].contains(#""usage":{"output_tokens":0}"#))
        #expect(encoder.isFinished)
    }

    @Test func aStateInTheStreamTravelsInTheID() throws {
        var encoder = AnthropicMessagesServer.StreamEncoder(id: "m", model: "c")
        var delta = ToolCallDelta(index: 0, id: "call_0", name: "f", arguments: "{}")
        delta.providerState = ProviderState(origin: "gemini:gemini-3-pro-preview", value: "SIG")
        let events = encoder.encode(ChatChunk(toolCallDeltas: [delta]))
        let start = try JSONValue(parsing: String(events[1].split(separator: "\n")[1].dropFirst(6)))
        let id = try #require(start["content_block"]?["id"]?.stringValue)
        #expect(ProviderState.decodeID(id) == ("call_0", delta.providerState))
    }
}
