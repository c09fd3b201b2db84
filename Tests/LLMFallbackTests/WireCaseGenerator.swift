@testable import LLMFallback

/// Generated requests, responses and streams for the wire formats' round-trip tests: seeded, so a failure names
/// the seed that reproduces it, and each in the canonical form a format carries without loss (what a format
/// cannot tell apart, such as two consecutive user turns merged into one, is not generated).
struct WireCaseGenerator {
    enum Format {
        case anthropic
        case gemini
    }

    let format: Format
    private var random: SeededGenerator

    init(_ format: Format, seed: UInt64) {
        self.format = format
        self.random = SeededGenerator(seed: seed)
    }

    private mutating func chance(_ percent: Int) -> Bool { Int.random(in: 0..<100, using: &random) < percent }
    private mutating func int(_ range: ClosedRange<Int>) -> Int { Int.random(in: range, using: &random) }
    private mutating func pick<T>(_ options: [T]) -> T { options[int(0...(options.count - 1))] }

    static let words = [
        "hello", "wörld", "👋", "\"quoted\"", "back\\slash", "new\nline", "tab\there", "ctrl\u{1}", "</script>", "ünïcødé",
        "42", "{not json", "日本語", "emoji 🧪", "",
    ]

    mutating func text() -> String {
        (0..<int(1...4)).map { _ in pick(Self.words) }.joined(separator: " ")
    }

    /// A text that no format reads as anything but text (never empty, never a JSON object).
    mutating func plainText() -> String {
        let text = self.text()
        return text.isEmpty || text.hasPrefix("{") ? "plain " + text : text
    }

    mutating func name() -> String { pick(["get_weather", "lookup", "send_mail", "calc", "noop"]) }

    /// A JSON value of the kinds a model's arguments hold, members in a random order.
    mutating func value(depth: Int = 0) -> JSONValue {
        switch int(0...(depth > 2 ? 4 : 6)) {
        case 0: return .string(text())
        case 1: return .int(int(-1000...1000))
        case 2: return .bool(chance(50))
        case 3: return .null
        case 4: return .number("12345678901234567890")
        case 5: return .array((0..<int(0...3)).map { _ in value(depth: depth + 1) })
        default: return .object(object(depth: depth + 1))
        }
    }

    mutating func object(depth: Int = 0) -> JSONObject {
        var object = JSONObject()
        for _ in 0..<int(0...4) {
            object[pick(["zeta", "alpha", "mid", "b", "a", "città", "x_y"])] = value(depth: depth)
        }
        return object
    }

    /// Compact JSON object text, as the neutral model holds a call's arguments.
    mutating func arguments() -> String { JSONValue.object(object()).jsonString }

    /// A tool schema in the subset every format carries as is, its properties in a random order.
    mutating func schema() -> JSONValue {
        var properties = JSONObject()
        for _ in 0..<int(1...4) {
            let type = pick(["string", "number", "integer", "boolean"])
            var property: JSONObject = ["type": .string(type)]
            if chance(40) { property["description"] = .string(plainText()) }
            if type == "string" && chance(30) { property["enum"] = ["a", "b"] }
            properties[pick(["zeta", "alpha", "city", "unit", "q", "limit"])] = .object(property)
        }
        var schema: JSONObject = ["type": "object", "properties": .object(properties)]
        if chance(50), let first = properties.keys.first { schema["required"] = [.string(first)] }
        return .object(schema)
    }

    mutating func tools() -> [Tool] {
        var tools: [Tool] = []
        var names: Set<String> = []
        for _ in 0..<int(0...3) {
            let name = self.name()
            guard names.insert(name).inserted else { continue }
            if chance(25) {
                tools.append(Tool(name: name, description: chance(50) ? plainText() : nil))
            } else {
                tools.append(Tool(name: name, description: chance(50) ? plainText() : nil, parameters: schema()))
            }
        }
        return tools
    }

    mutating func image() -> ContentPart {
        if chance(50) {
            return .image(.base64("iVBORw0KGgo=", mediaType: pick(["image/png", "image/jpeg"])))
        }
        return .image(.url(pick(["https://example.com/cat.png", "https://example.com/a/b.jpg"])))
    }

    /// User content: plain text, or parts that cannot collapse into plain text (several, or an image).
    mutating func userContent() -> Content {
        if chance(60) { return .text(plainText()) }
        var parts: [ContentPart] = [chance(50) ? .text(plainText()) : image()]
        parts.append(chance(50) ? .text(plainText()) : image())
        return .parts(parts)
    }

    /// A conversation: an optional system prompt, then user and assistant turns, tool calls answered in order.
    mutating func messages(model: String) -> [Message] {
        var messages: [Message] = []
        if chance(50) { messages.append(.system(plainText())) }
        var callNumber = 0
        for turn in 0..<int(1...4) {
            messages.append(Message(role: .user, content: userContent()))
            guard turn < 3 else { break }
            var calls: [ToolCall] = []
            for _ in 0..<int(0...2) {
                var call: ToolCall
                switch format {
                case .anthropic:
                    call = ToolCall(id: "toolu_\(callNumber)", name: name(), arguments: arguments())
                case .gemini:
                    call = ToolCall(id: "call_\(callNumber)", name: name(), arguments: arguments())
                    if chance(50) { call.providerState = ProviderState(origin: GeminiAdapter.origin(model), value: "sig-\(callNumber)") }
                }
                callNumber += 1
                calls.append(call)
            }
            let text = calls.isEmpty || chance(50) ? plainText() : ""
            messages.append(.assistant(text, toolCalls: calls))
            for call in calls {
                let content = chance(30) ? JSONValue.object(["result": .string(plainText()), "ok": true]).jsonString : plainText()
                switch format {
                case .anthropic: messages.append(.tool(callID: call.id, content: content))
                case .gemini: messages.append(.tool(callID: call.id, name: call.name, content: content))
                }
            }
        }
        if messages.last?.role == .assistant { messages.append(.user(plainText())) }
        return messages
    }

    /// A request in the canonical form of the format (see the type's summary).
    mutating func request(model: String) -> ChatRequest {
        var request = ChatRequest(messages: messages(model: model))
        if chance(50) { request.stop = (0..<int(1...3)).map { _ in plainText() } }
        request.tools = tools()
        if !request.tools.isEmpty, chance(70) {
            request.toolChoice = pick([.auto, .required, ToolChoice.none, .tool(request.tools[0].name)])
        }
        switch format {
        case .anthropic:
            if chance(40) { request.reasoningEffort = pick([.minimal, .low, .medium, .high]) }
            request.maxTokens = (request.reasoningEffort?.thinkingBudget ?? 0) + int(1...4096)
            if request.reasoningEffort == nil {
                if chance(50) { request.temperature = pick([0, 0.5, 1, 0.25]) }
                if chance(50) { request.topP = pick([0.9, 1, 0.125]) }
            }
            if let choice = request.toolChoice, choice != .none, chance(50) { request.parallelToolCalls = false }
            if chance(40) { request.user = "user-\(int(1...99))" }
        case .gemini:
            if chance(50) { request.maxTokens = int(1...8192) }
            if chance(50) { request.temperature = pick([0, 0.5, 1.5, 0.25]) }
            if chance(50) { request.topP = pick([0.9, 1, 0.125]) }
            if chance(40) { request.seed = int(-5...1_000_000) }
            if chance(40) { request.presencePenalty = pick([-2, 0.5, 1.25]) }
            if chance(40) { request.frequencyPenalty = pick([-1.5, 0, 2]) }
            if chance(30) {
                request.logprobs = true
                request.topLogprobs = int(1...5)
            }
            if chance(40) { request.reasoningEffort = pick([ReasoningEffort.none, .minimal, .low, .medium, .high]) }
            switch int(0...3) {
            case 0: request.responseFormat = .jsonObject
            case 1: request.responseFormat = .jsonSchema(name: "response", schema: schema())
            default: break
            }
        }
        return request
    }

    /// A response: text and/or tool calls, a finish reason the format tells apart, usage.
    mutating func response(model: String) -> ChatResponse {
        var calls: [ToolCall] = []
        for index in 0..<int(0...3) {
            switch format {
            case .anthropic: calls.append(ToolCall(id: "toolu_\(index)", name: name(), arguments: arguments()))
            case .gemini: calls.append(ToolCall(id: "call_\(index)", name: name(), arguments: arguments()))
            }
        }
        let content = calls.isEmpty || chance(50) ? text() : ""
        var finish: FinishReason
        if !calls.isEmpty {
            finish = .toolCalls
        } else {
            switch format {
            case .anthropic: finish = pick([.stop, .length, .contentFilter, .other("pause_turn")])
            case .gemini: finish = pick([.stop, .length, .contentFilter, .other("MALFORMED_FUNCTION_CALL")])
            }
        }
        let prompt = int(0...100_000)
        let completion = int(0...9000)
        let usage: Usage
        switch format {
        case .anthropic:
            usage = Usage(promptTokens: prompt, completionTokens: completion, cachedTokens: chance(50) ? int(0...prompt) : nil)
        case .gemini:
            let reasoning = chance(50) ? int(0...completion) : nil
            usage = Usage(
                promptTokens: prompt, completionTokens: completion, totalTokens: prompt + completion + int(0...3),
                cachedTokens: chance(50) ? int(0...prompt) : nil, reasoningTokens: reasoning)
        }
        return ChatResponse(content: content, toolCalls: calls, finishReason: finish, usage: usage, provider: "test", model: model)
    }

    /// A response as stream chunks: the text in pieces, each call's arguments in fragments (calls one after
    /// another, text possibly between them), the usage on a chunk of its own at the end.
    mutating func chunks(for response: ChatResponse) -> [ChatChunk] {
        var chunks: [ChatChunk] = []
        func pieces(_ text: String) -> [String] {
            var result: [String] = []
            var rest = Substring(text)
            while !rest.isEmpty {
                let count = int(1...max(1, min(rest.count, 7)))
                result.append(String(rest.prefix(count)))
                rest = rest.dropFirst(count)
            }
            return result
        }
        for piece in pieces(response.content) { chunks.append(ChatChunk(content: piece)) }
        for (index, call) in response.toolCalls.enumerated() {
            let fragments = call.arguments == "{}" && chance(50) ? [""] : pieces(call.arguments)
            for (offset, fragment) in fragments.enumerated() {
                let delta =
                    offset == 0
                    ? ToolCallDelta(index: index, id: call.id, name: call.name, arguments: fragment)
                    : ToolCallDelta(index: index, arguments: fragment)
                chunks.append(ChatChunk(toolCallDeltas: [delta]))
            }
        }
        if let finish = response.finishReason {
            if chance(50), !chunks.isEmpty {
                chunks[chunks.count - 1].finishReason = finish
            } else {
                chunks.append(ChatChunk(finishReason: finish))
            }
        }
        if let usage = response.usage { chunks.append(ChatChunk(usage: usage)) }
        return chunks
    }
}
