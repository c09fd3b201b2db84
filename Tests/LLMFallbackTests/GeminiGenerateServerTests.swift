import Foundation
import NIOCore
import NIOHTTP1
import Testing

@testable import LLMFallback

/// The server half of Gemini generateContent: requests decoded, answers, streams and errors encoded, and both
/// halves of the format each other's inverse.
@Suite struct GeminiGenerateServerTests {
    static let model = "gemini-2.5-flash"

    static func provider(_ model: String = model) throws -> ResolvedProvider {
        try Provider("google", model: model, apiKey: "AIza-test").resolved()
    }

    static func clientBody(_ request: ChatRequest, model: String = model, stream: Bool = false) throws -> ByteBuffer {
        let parts = try GeminiAdapter().makeRequest(request, for: try provider(model), stream: stream)
        return try #require(parts.body)
    }

    static func neutral(_ request: ChatRequest) -> ChatRequest {
        var request = request
        request.passthrough = nil
        request.extraBody = [:]
        return request
    }

    static func decode(_ json: String, model: String = model) throws(WireRequestError) -> GeminiGenerateServer.Request {
        try GeminiGenerateServer.decodeRequest(ByteBuffer(string: json), model: model)
    }

    // MARK: - Decoding requests

    static let toolTurns = #"""
        {"contents":[
          {"role":"user","parts":[{"text":"Weather in Paris?"},{"inlineData":{"mimeType":"image/png","data":"iVBORw0KGgo="}}]},
          {"role":"model","parts":[{"text":"Thinking...","thought":true},{"functionCall":{"name":"get_weather","args":{"unit":"c","city":"Paris"}},"thoughtSignature":"SIG-1"},
                                   {"functionCall":{"name":"get_time","args":{}}}]},
          {"role":"user","parts":[{"functionResponse":{"name":"get_time","response":{"content":"14:05"}}},
                                  {"functionResponse":{"name":"get_weather","response":{"temp":18,"sky":"sunny"}}},
                                  {"text":"Thanks"}]},
          {"parts":[{"fileData":{"mimeType":"application/pdf","fileUri":"https://example.com/r.pdf"}},{"executableCode":{"code":"1"}}]}
         ],
         "system_instruction":{"parts":[{"text":"Be terse."}]},
         "tools":[{"functionDeclarations":[{"name":"get_weather","description":"Weather","parameters":{"type":"OBJECT","properties":{"city":{"type":"STRING"},"unit":{"type":"STRING","enum":["c","f"]}},"required":["city"]}},
                                           {"name":"get_time"}]},
                  {"googleSearch":{}}],
         "toolConfig":{"functionCallingConfig":{"mode":"ANY","allowedFunctionNames":["get_weather"]}},
         "generationConfig":{"maxOutputTokens":256,"temperature":0.5,"topP":0.9,"topK":40,"stopSequences":["END"],"seed":7,
                             "presencePenalty":0.25,"frequencyPenalty":-0.5,"responseLogprobs":true,"logprobs":3,
                             "thinkingConfig":{"thinking_budget":8000}},
         "safetySettings":[{"category":"HARM_CATEGORY_HARASSMENT","threshold":"BLOCK_NONE"}]}
        """#

    @Test func decodesToolTurnsSnakeCaseAndTheGenerationConfig() throws {
        let decoded = try Self.decode(Self.toolTurns)
        #expect(decoded.model == Self.model)
        #expect(!decoded.stream)
        let request = decoded.request
        let signature = ProviderState(origin: GeminiAdapter.origin(Self.model), value: "SIG-1")
        #expect(request.messages == [
            .system("Be terse."),
            .user([.text("Weather in Paris?"), .image(.base64("iVBORw0KGgo=", mediaType: "image/png"))]),
            .assistant("", toolCalls: [
                ToolCall(id: "call_0", name: "get_weather", arguments: #"{"unit":"c","city":"Paris"}"#, providerState: signature),
                ToolCall(id: "call_1", name: "get_time", arguments: "{}"),
            ]),
            .tool(callID: "call_1", name: "get_time", content: "14:05"),
            .tool(callID: "call_0", name: "get_weather", content: #"{"temp":18,"sky":"sunny"}"#),
            .user("Thanks"),
            .user([.image(.url("https://example.com/r.pdf"))]),
        ])
        #expect(request.tools.map(\.name) == ["get_weather", "get_time"])
        #expect(request.tools[0].parameters == (try JSONValue(parsing:
            #"{"type":"object","properties":{"city":{"type":"string"},"unit":{"type":"string","enum":["c","f"]}},"required":["city"]}"#)))
        #expect(request.tools[1].parameters == ["type": "object", "properties": [:]])
        #expect(request.toolChoice == .tool("get_weather"))
        #expect(request.maxTokens == 256)
        #expect(request.temperature == 0.5)
        #expect(request.topP == 0.9)
        #expect(request.stop == ["END"])
        #expect(request.seed == 7)
        #expect(request.presencePenalty == 0.25)
        #expect(request.frequencyPenalty == -0.5)
        #expect(request.logprobs == true)
        #expect(request.topLogprobs == 3)
        #expect(request.reasoningEffort == .medium)
        #expect(decoded.unmappedContent == ["parts.thought", "parts.executableCode", "tools.googleSearch", "generationConfig.topK"])
        let passthrough = try #require(request.passthrough)
        #expect(passthrough.format == .gemini)
        #expect(passthrough.unmodelledKeys == ["safetySettings"])
        #expect(passthrough.messageCount == 7)
        #expect(JSONValue.object(passthrough.body) == (try JSONValue(parsing: Self.toolTurns)))
    }

    @Test func idsInTheRequestAreKeptAndCarryState() throws {
        let state = ProviderState(origin: "gemini:gemini-3-pro-preview", value: "S")
        let id = ProviderState.encodedID("fc_9", state: state)
        let decoded = try Self.decode(#"""
            {"contents":[{"role":"user","parts":[{"text":"go"}]},
             {"role":"model","parts":[{"functionCall":{"id":"\#(id)","name":"f","args":{}},"thoughtSignature":"ignored"}]},
             {"role":"user","parts":[{"functionResponse":{"id":"\#(id)","name":"f","response":{"x":1}}},{"functionResponse":{"name":"orphan","response":{}}}]}]}
            """#)
        #expect(decoded.request.messages[1].toolCalls == [ToolCall(id: "fc_9", name: "f", arguments: "{}", providerState: state)])
        #expect(decoded.request.messages[2] == .tool(callID: "fc_9", name: "f", content: #"{"x":1}"#))
        // A response to no call gets an id of its own.
        #expect(decoded.request.messages[3] == .tool(callID: "call_1", name: "orphan", content: "{}"))
        let bypass = try Self.decode(#"""
            {"contents":[{"role":"model","parts":[{"functionCall":{"name":"f"},"thoughtSignature":"skip_thought_signature_validator"}]}]}
            """#)
        #expect(bypass.request.messages[0].toolCalls[0].providerState == nil)
    }

    @Test(arguments: [
        (#"{"mode":"AUTO"}"#, ToolChoice?.some(.auto)), (#"{"mode":"NONE"}"#, ToolChoice.none), (#"{"mode":"ANY"}"#, .required),
        (#"{"mode":"ANY","allowed_function_names":["a","b"]}"#, .required), (#"{"mode":"MODE_UNSPECIFIED"}"#, nil), ("{}", nil),
    ])
    func functionCallingModes(config: String, choice: ToolChoice?) throws {
        let decoded = try Self.decode(#"{"contents":[{"parts":[{"text":"x"}]}],"tool_config":{"function_calling_config":\#(config)}}"#)
        #expect(decoded.request.toolChoice == choice)
    }

    @Test func jsonOutputThinkingLevelsAndDynamicThinking() throws {
        let schema = #"{"type":"OBJECT","properties":{"z":{"type":"STRING"},"a":{"type":"ARRAY","items":{"type":"INTEGER"}}}}"#
        let typed = try Self.decode(#"{"contents":[{"parts":[{"text":"x"}]}],"generationConfig":{"responseMimeType":"application/json","responseSchema":\#(schema),"thinkingConfig":{"thinkingLevel":"LOW"}}}"#)
        #expect(typed.request.responseFormat == .jsonSchema(name: "response", schema: try JSONValue(parsing:
            #"{"type":"object","properties":{"z":{"type":"string"},"a":{"type":"array","items":{"type":"integer"}}}}"#)))
        #expect(typed.request.reasoningEffort == .low)
        let raw = #"{"type":"object","properties":{"z":{"type":"string"}},"additionalProperties":false}"#
        let jsonSchema = try Self.decode(#"{"contents":[{"parts":[{"text":"x"}]}],"generationConfig":{"responseMimeType":"application/json","responseJsonSchema":\#(raw)}}"#)
        #expect(jsonSchema.request.responseFormat == .jsonSchema(name: "response", schema: try JSONValue(parsing: raw)))
        let object = try Self.decode(#"{"contents":[{"parts":[{"text":"x"}]}],"generationConfig":{"responseMimeType":"application/json","thinkingConfig":{"thinkingBudget":-1}}}"#)
        #expect(object.request.responseFormat == .jsonObject)
        #expect(object.request.reasoningEffort == nil)
        let off = try Self.decode(#"{"contents":[{"parts":[{"text":"x"}]}],"generationConfig":{"thinkingConfig":{"thinkingBudget":0,"includeThoughts":false}}}"#)
        #expect(off.request.reasoningEffort == ReasoningEffort.none)
        #expect(off.unmappedContent == ["thinkingConfig.includeThoughts"])
    }

    struct BadBody: Sendable, CustomTestStringConvertible {
        var body: String
        var param: String?
        var code: String?
        var says: String
        var testDescription: String { says }
    }

    @Test(arguments: [
        BadBody(body: "", param: nil, code: nil, says: "empty"),
        BadBody(body: "[1]", param: "body", code: "invalid_type", says: "expected an object"),
        BadBody(body: "{}", param: "contents", code: "missing_required_parameter", says: "'contents'"),
        BadBody(body: #"{"contents":[]}"#, param: "contents", code: "invalid_value", says: "at least one"),
        BadBody(body: #"{"contents":[{"parts":[]}],"contents":[]}"#, param: "contents", code: "duplicate_key", says: "'contents' appears twice"),
        BadBody(body: #"{"contents":[{"parts":[{"text":"x"}]}],"systemInstruction":{"parts":[]},"system_instruction":{"parts":[]}}"#,
                param: "systemInstruction", code: "duplicate_key", says: "'systemInstruction' twice"),
        BadBody(body: #"{"contents":[{"role":"assistant","parts":[]}]}"#, param: "contents[0].role", code: "invalid_value", says: "expected user or model"),
        BadBody(body: #"{"contents":[{"role":"user"}]}"#, param: "contents[0].parts", code: "missing_required_parameter", says: "'contents[0].parts'"),
        BadBody(body: #"{"contents":[{"parts":["text"]}]}"#, param: "contents[0].parts[0]", code: "invalid_type", says: "expected an object, got a string"),
        BadBody(body: #"{"contents":[{"role":"model","parts":[{"functionCall":{"args":{}}}]}]}"#, param: "contents[0].parts[0].functionCall.name",
                code: "missing_required_parameter", says: "functionCall.name"),
        BadBody(body: #"{"contents":[{"role":"model","parts":[{"functionCall":{"name":"f","args":"{}"}}]}]}"#, param: "contents[0].parts[0].functionCall.args",
                code: "invalid_type", says: "expected an object, got a string"),
        BadBody(body: #"{"contents":[{"role":"user","parts":[{"functionCall":{"name":"f"}}]}]}"#, param: "contents[0].parts[0].functionCall",
                code: "invalid_value", says: "belong to model turns"),
        BadBody(body: #"{"contents":[{"parts":[{"inline_data":{"data":"x"}}]}]}"#, param: "contents[0].parts[0].inlineData.mimeType",
                code: "missing_required_parameter", says: "mimeType"),
        BadBody(body: #"{"contents":[{"parts":[{"text":"x"}]}],"generationConfig":{"candidateCount":2}}"#, param: "generationConfig.candidateCount",
                code: "invalid_value", says: "must be 1"),
        BadBody(body: #"{"contents":[{"parts":[{"text":"x"}]}],"generationConfig":{"maxOutputTokens":"many"}}"#, param: "generationConfig.maxOutputTokens",
                code: "invalid_type", says: "expected an integer"),
        BadBody(body: #"{"contents":[{"parts":[{"text":"x"}]}],"toolConfig":{"functionCallingConfig":{"mode":"SOMETIMES"}}}"#,
                param: "toolConfig.functionCallingConfig.mode", code: "invalid_value", says: "AUTO, ANY, NONE"),
        BadBody(body: #"{"contents":[{"parts":[{"text":"x"}]}],"tools":[{"functionDeclarations":[{"name":"f","parameters":{"properties":{"k":1,"k":2}}}]}]}"#,
                param: "k", code: "duplicate_key", says: "'k' appears twice"),
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

    @Test(arguments: 0..<300)
    func clientEncodeThenServerDecodeKeepsTheRequest(seed: Int) throws {
        var generator = WireCaseGenerator(.gemini, seed: UInt64(seed))
        let request = generator.request(model: Self.model)
        let decoded = try GeminiGenerateServer.decodeRequest(try Self.clientBody(request), model: Self.model, stream: true)
        #expect(Self.neutral(decoded.request) == request, "seed \(seed)")
        #expect(decoded.stream)
        #expect(decoded.unmappedContent.isEmpty, "seed \(seed)")
        #expect(decoded.request.passthrough?.unmodelledKeys == [])
    }

    @Test func theAdaptersFixturesComeBack() throws {
        let request = ChatRequest(
            messages: [
                .system("You are terse."), .user("Hi"), .assistant("Hello!"), .user("Bye"),
            ],
            temperature: 0.5, topP: 0.9, maxTokens: 256, stop: ["END"], seed: 7)
        #expect(Self.neutral(try GeminiGenerateServer.decodeRequest(try Self.clientBody(request), model: Self.model).request) == request)
        // Gemini 3 takes a level, and the documented bypass for calls it did not make, which carries no state.
        var three = ChatRequest(messages: [
            .user("find"), .assistant("", toolCalls: [ToolCall(id: "call_0", name: "lookup", arguments: #"{"q":"cat"}"#)]),
            .tool(callID: "call_0", name: "lookup", content: "a cat"),
        ], tools: [Tool(name: "lookup")], reasoningEffort: .high)
        let decoded = try GeminiGenerateServer.decodeRequest(try Self.clientBody(three, model: "gemini-3-pro-preview"), model: "gemini-3-pro-preview")
        #expect(Self.neutral(decoded.request) == three)
        three.messages[1].toolCalls[0].providerState = ProviderState(origin: GeminiAdapter.origin("gemini-3-pro-preview"), value: "SIG")
        let signed = try GeminiGenerateServer.decodeRequest(try Self.clientBody(three, model: "gemini-3-pro-preview"), model: "gemini-3-pro-preview")
        #expect(Self.neutral(signed.request) == three)
    }

    @Test func toolSchemasKeepTheirMemberOrder() throws {
        let schema = try JSONValue(parsing: #"{"type":"object","properties":{"zeta":{"type":"string"},"alpha":{"type":"number"}},"required":["zeta"]}"#)
        let request = ChatRequest(messages: [.user("Hi")], tools: [Tool(name: "t", parameters: schema)], responseFormat: .jsonSchema(name: "response", schema: schema))
        let decoded = try GeminiGenerateServer.decodeRequest(try Self.clientBody(request), model: Self.model)
        #expect(decoded.request.tools[0].parameters.jsonString == schema.jsonString)
        #expect(decoded.request.responseFormat == .jsonSchema(name: "response", schema: schema))
    }

    @Test(arguments: 0..<200)
    func serverEncodeThenClientDecodeKeepsTheResponse(seed: Int) throws {
        var generator = WireCaseGenerator(.gemini, seed: UInt64(seed))
        var response = generator.response(model: Self.model)
        let withIDs = seed % 2 == 0
        if !withIDs {
            // Without ids, Gemini's signature travels in the part: give some calls one.
            for index in response.toolCalls.indices where index % 2 == 0 {
                response.toolCalls[index].providerState = ProviderState(origin: GeminiAdapter.origin(Self.model), value: "sig\(index)")
            }
        }
        let body = GeminiGenerateServer.encodeResponse(response, id: "resp-\(seed)", model: Self.model, includeCallIDs: withIDs)
        let decoded = try GeminiAdapter().decodeResponse(body, headers: [:], for: try Self.provider())
        #expect(decoded.content == response.content, "seed \(seed)")
        #expect(decoded.toolCalls == response.toolCalls, "seed \(seed)")
        #expect(decoded.finishReason == response.finishReason, "seed \(seed)")
        #expect(decoded.usage == response.usage, "seed \(seed)")
        #expect(decoded.id == "resp-\(seed)")
        #expect(decoded.model == Self.model)
    }

    @Test func anAnswerIsAGenerateContentResponse() throws {
        let response = ChatResponse(
            content: "Checking.",
            toolCalls: [ToolCall(id: "call_0", name: "get_weather", arguments: #"{"unit":"c","city":"Paris"}"#,
                                 providerState: ProviderState(origin: GeminiAdapter.origin(Self.model), value: "SIG"))],
            finishReason: .toolCalls, usage: Usage(promptTokens: 10, completionTokens: 30, reasoningTokens: 20), provider: "p", model: "m")
        let plain = String(buffer: GeminiGenerateServer.encodeResponse(response, id: "r1", model: Self.model, includeCallIDs: false))
        #expect(plain == #"{"candidates":[{"content":{"role":"model","parts":[{"text":"Checking."},{"functionCall":{"name":"get_weather","args":{"unit":"c","city":"Paris"}},"thoughtSignature":"SIG"}]},"finishReason":"STOP","index":0}],"usageMetadata":{"promptTokenCount":10,"candidatesTokenCount":10,"totalTokenCount":40,"thoughtsTokenCount":20},"modelVersion":"gemini-2.5-flash","responseId":"r1"}"#)
        let withID = try JSONValue(parsing: String(buffer: GeminiGenerateServer.encodeResponse(response, id: "r1", model: Self.model)))
        let id = try #require(withID["candidates"]?.arrayValue?.first?["content"]?["parts"]?.arrayValue?[1]["functionCall"]?["id"]?.stringValue)
        #expect(ProviderState.decodeID(id) == ("call_0", response.toolCalls[0].providerState))
        // Served back through the server half, the id brings the state whatever model the URL names.
        let next = try Self.decode(#"{"contents":[{"role":"model","parts":[{"functionCall":{"id":"\#(id)","name":"get_weather"}}]}]}"#, model: "my-chain")
        #expect(next.request.messages[0].toolCalls[0].providerState == response.toolCalls[0].providerState)
    }

    @Test func errorsAreGoogleRPCErrors() {
        let body = GeminiGenerateServer.encodeError(code: 429, message: "Resource has been exhausted", status: "RESOURCE_EXHAUSTED")
        #expect(String(buffer: body) == #"{"error":{"code":429,"message":"Resource has been exhausted","status":"RESOURCE_EXHAUSTED"}}"#)
        let error = GeminiAdapter().classifyError(status: 429, headers: [:], body: body)
        #expect(error.kind == .rateLimited)
        #expect(error.code == "RESOURCE_EXHAUSTED")
        let event = GeminiGenerateServer.StreamEncoder.errorEvent(code: 503, message: "down", status: "UNAVAILABLE")
        #expect(event == "data: {\"error\":{\"code\":503,\"message\":\"down\",\"status\":\"UNAVAILABLE\"}}\r\n\r\n")
    }

    // MARK: - Streams

    static func encodeStream(_ chunks: [ChatChunk], includeCallIDs: Bool) -> String {
        var encoder = GeminiGenerateServer.StreamEncoder(id: "resp-s", model: Self.model, includeCallIDs: includeCallIDs)
        var text = ""
        for chunk in chunks { text += encoder.encode(chunk).joined() }
        text += encoder.finish().joined()
        #expect(encoder.finish().isEmpty)
        return text
    }

    @Test(arguments: 0..<200)
    func serverStreamThenClientDecodeKeepsTheAnswer(seed: Int) throws {
        var generator = WireCaseGenerator(.gemini, seed: UInt64(seed))
        let response = generator.response(model: Self.model)
        let chunks = generator.chunks(for: response)
        let stream = Self.encodeStream(chunks, includeCallIDs: seed % 3 != 0)
        let bytes = Array(stream.utf8)
        let split = bytes.isEmpty ? 0 : (seed * 7919) % bytes.count
        let summary = try StreamSummary.decode(
            stream, in: [Array(bytes[..<split]), Array(bytes[split...])], adapter: GeminiAdapter(), provider: try Self.provider())
        #expect(summary.text == response.content, "seed \(seed)")
        var calls: [Int: StreamSummary.Call] = [:]
        for (index, call) in response.toolCalls.enumerated() { calls[index] = .init(id: call.id, name: call.name, arguments: call.arguments) }
        #expect(summary.toolCalls == calls, "seed \(seed)")
        #expect(summary.finishReasons == [response.finishReason].compactMap { $0 }, "seed \(seed)")
        #expect(summary.usage == response.usage, "seed \(seed)")
        #expect(summary.usageCount == 1)
        #expect(summary.isComplete)
        #expect(summary.ids == ["resp-s"])
    }

    @Test func callsGoOutWholeAndTheFinishingChunkEndsTheStream() throws {
        var encoder = GeminiGenerateServer.StreamEncoder(id: "r", model: Self.model, includeCallIDs: false)
        #expect(encoder.encode(ChatChunk(content: "Hi")).count == 1)
        #expect(encoder.encode(ChatChunk(toolCallDeltas: [ToolCallDelta(index: 0, id: "c", name: "f", arguments: #"{"s":"}{"#)])).isEmpty)
        let whole = encoder.encode(ChatChunk(toolCallDeltas: [ToolCallDelta(index: 0, arguments: #"","n":{"k":[1]}}"#)]))
        #expect(whole.count == 1)
        #expect(whole[0].contains(#"{"functionCall":{"name":"f","args":{"s":"}{","n":{"k":[1]}}}}"#))
        #expect(!whole[0].contains("finishReason"))
        // Not a JSON object: sent at the end, as `{}`.
        #expect(encoder.encode(ChatChunk(toolCallDeltas: [ToolCallDelta(index: 1, id: "d", name: "g", arguments: "[1]")])).isEmpty)
        let last = encoder.encode(ChatChunk(content: "!", finishReason: .toolCalls))
        #expect(last.count == 1)
        #expect(last[0].hasPrefix(#"data: {"candidates":[{"content":{"role":"model","parts":[{"text":"!"},{"functionCall":{"name":"g","args":{}}}]},"finishReason":"STOP","index":0}],"modelVersion""#))
        #expect(last[0].hasSuffix("\r\n\r\n"))
        #expect(encoder.isFinished)
        #expect(encoder.encode(ChatChunk(content: "late")).isEmpty)
        let usage = encoder.encode(ChatChunk(usage: Usage(promptTokens: 3, completionTokens: 4)))
        #expect(usage == [#"data: {"usageMetadata":{"promptTokenCount":3,"candidatesTokenCount":4,"totalTokenCount":7},"modelVersion":"gemini-2.5-flash","responseId":"r"}"# + "\r\n\r\n"])
        #expect(encoder.finish(usage: Usage(promptTokens: 3, completionTokens: 4)).isEmpty)
    }
}

/// Hostile sizes stay linear: a call streamed in 200,000 fragments, a conversation of 20,000 calls answered by
/// name. (Either, done the quadratic way, takes minutes or runs out of memory.)
@Suite(.timeLimit(.minutes(1))) struct GeminiGenerateServerBoundsTests {
    @Test func aCallInManyFragmentsIsGatheredInPlace() throws {
        var encoder = GeminiGenerateServer.StreamEncoder(id: "r", model: "m", includeCallIDs: false)
        #expect(encoder.encode(ChatChunk(toolCallDeltas: [ToolCallDelta(index: 0, id: "c", name: "f", arguments: #"{"k":""#)])).isEmpty)
        let fragment = ToolCallDelta(index: 0, arguments: String(repeating: "x", count: 16))
        for _ in 0..<200_000 { _ = encoder.encode(ChatChunk(toolCallDeltas: [fragment])) }
        let events = encoder.encode(ChatChunk(toolCallDeltas: [ToolCallDelta(index: 0, arguments: #""}"#)]))
        #expect(events.count == 1)
        #expect(events[0].utf8.count > 3_200_000)
    }

    @Test func manyCallsAnsweredByNameAreMatchedOnce() throws {
        let count = 20_000
        let calls = (0..<count).map { _ in #"{"functionCall":{"name":"f","args":{}}}"# }.joined(separator: ",")
        let responses = (0..<count).map { #"{"functionResponse":{"name":"f","response":{"n":\#($0)}}}"# }.joined(separator: ",")
        let body = #"{"contents":[{"role":"model","parts":[\#(calls)]},{"role":"user","parts":[\#(responses)]}]}"#
        let decoded = try GeminiGenerateServer.decodeRequest(ByteBuffer(string: body), model: "m")
        #expect(decoded.request.messages.count == count + 1)
        #expect(decoded.request.messages.last == .tool(callID: "call_\(count - 1)", name: "f", content: #"{"n":\#(count - 1)}"#))
    }
}
