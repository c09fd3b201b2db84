import NIOCore

// MARK: - Responses and stream chunks, read by hand
//
// Each wire type reads itself from a ``JSONReader`` into the same value its `Decodable` conformance gives: every
// member the synthesized `init(from:)` decodes is read (in every choice and tool call, not only the first) with
// the same rules (`null` as absent, a wrong type as a failure), and unknown members are skipped. Whenever the
// reader gives up, the adapter decodes the body again with `JSONDecoder`, which then decides and words the error.

extension OpenAICompletion {
    /// The completion in `body`, or `nil` when the fast reader cannot tell (see ``JSONReader``).
    init?(fastParsing body: ByteBuffer) {
        guard let completion = JSONReader.read(body, Self.read) else { return nil }
        self = completion
    }

    static func read(_ reader: inout JSONReader) throws -> OpenAICompletion {
        var id: String?
        var model: String?
        var choices: [Choice]?
        var usage: OpenAIUsage?
        var error: OpenAIErrorBody?
        var members = JSONReader.Members()
        try reader.readObject { reader, key in
            switch key {
            case "id":
                try members.insert(0)
                id = try reader.readOptionalString()
            case "model":
                try members.insert(1)
                model = try reader.readOptionalString()
            case "choices":
                try members.insert(2)
                choices = try reader.readOptionalArray(Choice.read)
            case "usage":
                try members.insert(3)
                usage = try reader.readOptional(OpenAIUsage.read)
            case "error":
                try members.insert(4)
                error = try reader.readOptional(OpenAIErrorBody.read)
            default:
                try reader.skipValue()
            }
        }
        return OpenAICompletion(id: id, model: model, choices: choices, usage: usage, error: error)
    }
}

extension OpenAICompletion.Choice {
    static func read(_ reader: inout JSONReader) throws -> Self {
        var index: Int?
        var message: Message?
        var finishReason: String?
        var members = JSONReader.Members()
        try reader.readObject { reader, key in
            switch key {
            case "index":
                try members.insert(0)
                index = try reader.readOptionalInt()
            case "message":
                try members.insert(1)
                message = try reader.readOptional(Message.read)
            case "finish_reason":
                try members.insert(2)
                finishReason = try reader.readOptionalString()
            default:
                try reader.skipValue()
            }
        }
        return Self(index: index, message: message, finishReason: finishReason)
    }
}

extension OpenAICompletion.Choice.Message {
    static func read(_ reader: inout JSONReader) throws -> Self {
        var content: FlexibleText?
        var refusal: String?
        var toolCalls: [OpenAIToolCallWire]?
        var members = JSONReader.Members()
        try reader.readObject { reader, key in
            switch key {
            case "content":
                try members.insert(0)
                content = try reader.readOptional(FlexibleText.read)
            case "refusal":
                try members.insert(1)
                refusal = try reader.readOptionalString()
            case "tool_calls":
                try members.insert(2)
                toolCalls = try reader.readOptionalArray(OpenAIToolCallWire.read)
            default:
                try reader.skipValue()
            }
        }
        return Self(content: content, refusal: refusal, toolCalls: toolCalls)
    }
}

extension FlexibleText {
    /// Text as ``init(from:)`` makes it.
    init(text: String) {
        self.text = text
    }

    /// A string, or the `text` strings of an array's elements joined, as ``init(from:)`` decodes them (each element
    /// as a ``JSONValue``).
    static func read(_ reader: inout JSONReader) throws -> Self {
        if try reader.peek() == UInt8(ascii: "\"") {
            return FlexibleText(text: try reader.readString())
        }
        var text = ""
        try reader.readArray { reader in
            guard try reader.peek() == UInt8(ascii: "{") else {
                try reader.skipValue(asJSONValue: true)
                return
            }
            var members = JSONReader.Members()
            try reader.readObject { reader, key in
                switch key {
                case "text":
                    try members.insert(0)
                    if try reader.peek() == UInt8(ascii: "\"") {
                        text += try reader.readString()
                    } else {
                        try reader.skipValue(asJSONValue: true)
                    }
                default:
                    try reader.skipValue(asJSONValue: true)
                }
            }
        }
        return FlexibleText(text: text)
    }
}

extension StringOrNumber {
    /// Text as ``init(from:)`` makes it.
    init(text: String) {
        self.text = text
    }

    static func read(_ reader: inout JSONReader) throws -> Self {
        if try reader.peek() == UInt8(ascii: "\"") {
            return StringOrNumber(text: try reader.readString())
        }
        return StringOrNumber(text: String(try reader.readInt()))
    }
}

extension OpenAIErrorBody {
    static func read(_ reader: inout JSONReader) throws -> Self {
        var message: String?
        var type: String?
        var code: StringOrNumber?
        var members = JSONReader.Members()
        try reader.readObject { reader, key in
            switch key {
            case "message":
                try members.insert(0)
                message = try reader.readOptionalString()
            case "type":
                try members.insert(1)
                type = try reader.readOptionalString()
            case "code":
                try members.insert(2)
                code = try reader.readOptional(StringOrNumber.read)
            default:
                try reader.skipValue()
            }
        }
        return Self(message: message, type: type, code: code)
    }
}

extension OpenAIUsage {
    static func read(_ reader: inout JSONReader) throws -> Self {
        var promptTokens: Int?
        var completionTokens: Int?
        var totalTokens: Int?
        var promptDetails: PromptDetails?
        var completionDetails: CompletionDetails?
        var members = JSONReader.Members()
        try reader.readObject { reader, key in
            switch key {
            case "prompt_tokens":
                try members.insert(0)
                promptTokens = try reader.readOptionalInt()
            case "completion_tokens":
                try members.insert(1)
                completionTokens = try reader.readOptionalInt()
            case "total_tokens":
                try members.insert(2)
                totalTokens = try reader.readOptionalInt()
            case "prompt_tokens_details":
                try members.insert(3)
                promptDetails = try reader.readOptional { reader in
                    PromptDetails(cachedTokens: try Self.readDetail(&reader, "cached_tokens"))
                }
            case "completion_tokens_details":
                try members.insert(4)
                completionDetails = try reader.readOptional { reader in
                    CompletionDetails(reasoningTokens: try Self.readDetail(&reader, "reasoning_tokens"))
                }
            default:
                try reader.skipValue()
            }
        }
        return Self(
            promptTokens: promptTokens,
            completionTokens: completionTokens,
            totalTokens: totalTokens,
            promptTokensDetails: promptDetails,
            completionTokensDetails: completionDetails
        )
    }

    /// The integer member `name` of a details object (`nil` when absent or `null`).
    private static func readDetail(_ reader: inout JSONReader, _ name: StaticString) throws -> Int? {
        var value: Int?
        var seen = false
        try reader.readObject { reader, key in
            if name ~= key {
                guard !seen else { throw JSONReader.Unsupported() }
                seen = true
                value = try reader.readOptionalInt()
            } else {
                try reader.skipValue()
            }
        }
        return value
    }
}

extension OpenAIToolCallWire {
    static func read(_ reader: inout JSONReader) throws -> Self {
        var index: Int?
        var id: String?
        var function: Function?
        var members = JSONReader.Members()
        try reader.readObject { reader, key in
            switch key {
            case "index":
                try members.insert(0)
                index = try reader.readOptionalInt()
            case "id":
                try members.insert(1)
                id = try reader.readOptionalString()
            case "function":
                try members.insert(2)
                function = try reader.readOptional(Function.read)
            default:
                try reader.skipValue()
            }
        }
        return Self(index: index, id: id, function: function)
    }
}

extension OpenAIToolCallWire.Function {
    static func read(_ reader: inout JSONReader) throws -> Self {
        var name: String?
        var arguments: String?
        var members = JSONReader.Members()
        try reader.readObject { reader, key in
            switch key {
            case "name":
                try members.insert(0)
                name = try reader.readOptionalString()
            case "arguments":
                try members.insert(1)
                arguments = try reader.readOptionalString()
            default:
                try reader.skipValue()
            }
        }
        return Self(name: name, arguments: arguments)
    }
}

extension OpenAIStreamChunk {
    /// The chunk in an event's `data`, or `nil` when the fast reader cannot tell (see ``JSONReader``).
    init?(fastParsing data: String) {
        guard let chunk = JSONReader.read(data, Self.read) else { return nil }
        self = chunk
    }

    static func read(_ reader: inout JSONReader) throws -> OpenAIStreamChunk {
        var id: String?
        var model: String?
        var choices: [Choice]?
        var usage: OpenAIUsage?
        var error: OpenAIErrorBody?
        var members = JSONReader.Members()
        try reader.readObject { reader, key in
            switch key {
            case "id":
                try members.insert(0)
                id = try reader.readOptionalString()
            case "model":
                try members.insert(1)
                model = try reader.readOptionalString()
            case "choices":
                try members.insert(2)
                choices = try reader.readOptionalArray(Choice.read)
            case "usage":
                try members.insert(3)
                usage = try reader.readOptional(OpenAIUsage.read)
            case "error":
                try members.insert(4)
                error = try reader.readOptional(OpenAIErrorBody.read)
            default:
                try reader.skipValue()
            }
        }
        return OpenAIStreamChunk(id: id, model: model, choices: choices, usage: usage, error: error)
    }
}

extension OpenAIStreamChunk.Choice {
    static func read(_ reader: inout JSONReader) throws -> Self {
        var index: Int?
        var delta: Delta?
        var finishReason: String?
        var members = JSONReader.Members()
        try reader.readObject { reader, key in
            switch key {
            case "index":
                try members.insert(0)
                index = try reader.readOptionalInt()
            case "delta":
                try members.insert(1)
                delta = try reader.readOptional(Delta.read)
            case "finish_reason":
                try members.insert(2)
                finishReason = try reader.readOptionalString()
            default:
                try reader.skipValue()
            }
        }
        return Self(index: index, delta: delta, finishReason: finishReason)
    }
}

extension OpenAIStreamChunk.Choice.Delta {
    static func read(_ reader: inout JSONReader) throws -> Self {
        var content: String?
        var toolCalls: [OpenAIToolCallWire]?
        var members = JSONReader.Members()
        try reader.readObject { reader, key in
            switch key {
            case "content":
                try members.insert(0)
                content = try reader.readOptionalString()
            case "tool_calls":
                try members.insert(1)
                toolCalls = try reader.readOptionalArray(OpenAIToolCallWire.read)
            default:
                try reader.skipValue()
            }
        }
        return Self(content: content, toolCalls: toolCalls)
    }
}
