import NIOCore

// MARK: - Request body, written by hand

extension OpenAIRequestBody {
    /// The body as JSON, written straight into a buffer: the same members and values as ``encode(to:)`` gives
    /// `JSONEncoder` (escaping, numbers and the choice between `max_tokens` and `max_completion_tokens` included),
    /// without the `Encodable` machinery, a `Data` and a copy.
    ///
    /// Members are written in ``encode(to:)``'s order; free-form values (``JSONValue`` objects) in their
    /// dictionary's order, as `JSONEncoder` without `.sortedKeys` writes them.
    ///
    /// - Throws: ``NonFiniteNumber`` for a NaN or infinite `Double`, which `JSONEncoder` refuses; the caller then
    ///   lets `JSONEncoder` report it.
    func writeJSON() throws(NonFiniteNumber) -> ByteBuffer {
        var buffer = ByteBufferAllocator().buffer(capacity: estimatedSize)
        buffer.writeInteger(UInt8(ascii: "{"))
        if let model {
            buffer.writeRaw("\"model\":")
            buffer.writeJSONString(model)
            buffer.writeInteger(UInt8(ascii: ","))
        }
        buffer.writeRaw("\"messages\":[")
        for (offset, message) in request.messages.enumerated() {
            if offset > 0 { buffer.writeInteger(UInt8(ascii: ",")) }
            Self.write(message, into: &buffer)
        }
        buffer.writeInteger(UInt8(ascii: "]"))
        if let temperature = request.temperature {
            buffer.writeRaw(",\"temperature\":")
            try buffer.writeJSONNumber(temperature)
        }
        if let topP = request.topP {
            buffer.writeRaw(",\"top_p\":")
            try buffer.writeJSONNumber(topP)
        }
        if let maxTokens = request.maxTokens {
            if maxTokensField == .maxCompletionTokens {
                buffer.writeRaw(",\"max_completion_tokens\":")
            } else {
                buffer.writeRaw(",\"max_tokens\":")
            }
            buffer.writeJSONInt(maxTokens)
        }
        if !request.stop.isEmpty {
            buffer.writeRaw(",\"stop\":[")
            for (offset, stop) in request.stop.enumerated() {
                if offset > 0 { buffer.writeInteger(UInt8(ascii: ",")) }
                buffer.writeJSONString(stop)
            }
            buffer.writeInteger(UInt8(ascii: "]"))
        }
        if !request.tools.isEmpty {
            buffer.writeRaw(",\"tools\":[")
            for (offset, tool) in request.tools.enumerated() {
                if offset > 0 { buffer.writeInteger(UInt8(ascii: ",")) }
                buffer.writeRaw("{\"type\":\"function\",\"function\":{\"name\":")
                buffer.writeJSONString(tool.name)
                if let description = tool.description {
                    buffer.writeRaw(",\"description\":")
                    buffer.writeJSONString(description)
                }
                buffer.writeRaw(",\"parameters\":")
                try buffer.writeJSONValue(tool.parameters)
                if let strict = tool.strict {
                    buffer.writeRaw(",\"strict\":")
                    buffer.writeJSONBool(strict)
                }
                buffer.writeRaw("}}")
            }
            buffer.writeInteger(UInt8(ascii: "]"))
        }
        if let choice = request.toolChoice {
            switch choice {
            case .auto: buffer.writeRaw(",\"tool_choice\":\"auto\"")
            case .none: buffer.writeRaw(",\"tool_choice\":\"none\"")
            case .required: buffer.writeRaw(",\"tool_choice\":\"required\"")
            case .tool(let name):
                buffer.writeRaw(",\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":")
                buffer.writeJSONString(name)
                buffer.writeRaw("}}")
            }
        }
        if let parallel = request.parallelToolCalls {
            buffer.writeRaw(",\"parallel_tool_calls\":")
            buffer.writeJSONBool(parallel)
        }
        if let format = request.responseFormat {
            switch format {
            case .text: buffer.writeRaw(",\"response_format\":{\"type\":\"text\"}")
            case .jsonObject: buffer.writeRaw(",\"response_format\":{\"type\":\"json_object\"}")
            case .jsonSchema(let name, let schema, let strict):
                buffer.writeRaw(",\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"name\":")
                buffer.writeJSONString(name)
                buffer.writeRaw(",\"schema\":")
                try buffer.writeJSONValue(schema)
                if let strict {
                    buffer.writeRaw(",\"strict\":")
                    buffer.writeJSONBool(strict)
                }
                buffer.writeRaw("}}")
            }
        }
        if let seed = request.seed {
            buffer.writeRaw(",\"seed\":")
            buffer.writeJSONInt(seed)
        }
        if let user = request.user {
            buffer.writeRaw(",\"user\":")
            buffer.writeJSONString(user)
        }
        if let effort = request.reasoningEffort {
            buffer.writeRaw(",\"reasoning_effort\":")
            buffer.writeJSONString(effort.rawValue)
        }
        if let penalty = request.frequencyPenalty {
            buffer.writeRaw(",\"frequency_penalty\":")
            try buffer.writeJSONNumber(penalty)
        }
        if let penalty = request.presencePenalty {
            buffer.writeRaw(",\"presence_penalty\":")
            try buffer.writeJSONNumber(penalty)
        }
        if let logprobs = request.logprobs {
            buffer.writeRaw(",\"logprobs\":")
            buffer.writeJSONBool(logprobs)
        }
        if let top = request.topLogprobs {
            buffer.writeRaw(",\"top_logprobs\":")
            buffer.writeJSONInt(top)
        }
        if stream {
            buffer.writeRaw(",\"stream\":true,\"stream_options\":{\"include_usage\":true}")
        }
        buffer.writeInteger(UInt8(ascii: "}"))
        return buffer
    }

    /// The client's own body (``ChatRequest/passthrough``), with only what this provider needs changed: `model`
    /// (left out for Azure, whose URL names the deployment), the token limit spelled the provider's way, `stream`
    /// and `stream_options` (the chain needs the usage chunk), messages the chain appended written after the
    /// client's (all of them from the neutral model when the client's carry provider state in their ids), and the
    /// members in `dropping` left out. Every other member is written as the client sent it, in
    /// its order, numbers exact.
    func writePassthrough(_ passthrough: PassthroughBody, dropping: [String]) throws(NonFiniteNumber) -> ByteBuffer {
        var buffer = ByteBufferAllocator().buffer(capacity: estimatedSize + 256)
        buffer.writeInteger(UInt8(ascii: "{"))
        var first = true
        func key(_ name: String) {
            if !first { buffer.writeInteger(UInt8(ascii: ",")) }
            first = false
            buffer.writeJSONString(name)
            buffer.writeInteger(UInt8(ascii: ":"))
        }
        var wroteLimit = false
        var streamOptions: JSONObject = [:]
        if model != nil && !passthrough.body.contains(key: "model") {
            key("model")
            buffer.writeJSONString(model!)
        }
        for (name, value) in passthrough.body where !dropping.contains(name) {
            switch name {
            case "model":
                guard let model else { continue }
                key(name)
                buffer.writeJSONString(model)
            case "max_tokens", "max_completion_tokens":
                guard !wroteLimit, let limit = request.maxTokens else { continue }
                wroteLimit = true
                key(maxTokensField == .maxCompletionTokens ? "max_completion_tokens" : "max_tokens")
                buffer.writeJSONInt(limit)
            case "stream":
                continue
            case "stream_options":
                if case .object(let options) = value { streamOptions = options }
            case "messages" where passthrough.messagesCarryProviderState:
                // Written from the neutral messages: their ids without the state only the chain reads.
                key(name)
                buffer.writeInteger(UInt8(ascii: "["))
                for (offset, message) in request.messages.enumerated() {
                    if offset > 0 { buffer.writeInteger(UInt8(ascii: ",")) }
                    Self.write(message, into: &buffer)
                }
                buffer.writeInteger(UInt8(ascii: "]"))
            case "messages" where request.messages.count != passthrough.messageCount:
                key(name)
                buffer.writeInteger(UInt8(ascii: "["))
                var count = 0
                for element in value.arrayValue ?? [] {
                    if count > 0 { buffer.writeInteger(UInt8(ascii: ",")) }
                    try buffer.writeJSONValue(element)
                    count += 1
                }
                for message in request.messages.dropFirst(passthrough.messageCount) {
                    if count > 0 { buffer.writeInteger(UInt8(ascii: ",")) }
                    Self.write(message, into: &buffer)
                    count += 1
                }
                buffer.writeInteger(UInt8(ascii: "]"))
            default:
                key(name)
                try buffer.writeJSONValue(value)
            }
        }
        if stream {
            streamOptions["include_usage"] = true
            key("stream")
            buffer.writeRaw("true")
            key("stream_options")
            try buffer.writeJSONValue(.object(streamOptions))
        }
        buffer.writeInteger(UInt8(ascii: "}"))
        return buffer
    }

    /// The top-level members ``writeJSON()`` writes for `request` (for reporting what a provider drops).
    static func writtenKeys(of request: ChatRequest) -> [String] {
        var keys = ["model", "messages"]
        if request.temperature != nil { keys.append("temperature") }
        if request.topP != nil { keys.append("top_p") }
        if request.maxTokens != nil { keys += ["max_tokens", "max_completion_tokens"] }
        if !request.stop.isEmpty { keys.append("stop") }
        if !request.tools.isEmpty { keys.append("tools") }
        if request.toolChoice != nil { keys.append("tool_choice") }
        if request.parallelToolCalls != nil { keys.append("parallel_tool_calls") }
        if request.responseFormat != nil { keys.append("response_format") }
        if request.seed != nil { keys.append("seed") }
        if request.user != nil { keys.append("user") }
        if request.reasoningEffort != nil { keys.append("reasoning_effort") }
        if request.frequencyPenalty != nil { keys.append("frequency_penalty") }
        if request.presencePenalty != nil { keys.append("presence_penalty") }
        if request.logprobs != nil { keys.append("logprobs") }
        if request.topLogprobs != nil { keys.append("top_logprobs") }
        return keys
    }

    /// One message, as ``OpenAIMessage`` encodes it.
    static func write(_ message: Message, into buffer: inout ByteBuffer) {
        buffer.writeRaw("{\"role\":")
        buffer.writeJSONString(message.role.rawValue)
        buffer.writeRaw(",\"content\":")
        switch message.content {
        case .text(let text):
            if text.isEmpty && message.role == .assistant && !message.toolCalls.isEmpty {
                buffer.writeRaw("null")
            } else {
                buffer.writeJSONString(text)
            }
        case .parts(let parts):
            buffer.writeInteger(UInt8(ascii: "["))
            for (offset, part) in parts.enumerated() {
                if offset > 0 { buffer.writeInteger(UInt8(ascii: ",")) }
                write(part, into: &buffer)
            }
            buffer.writeInteger(UInt8(ascii: "]"))
        }
        if let name = message.name {
            buffer.writeRaw(",\"name\":")
            buffer.writeJSONString(name)
        }
        if !message.toolCalls.isEmpty {
            buffer.writeRaw(",\"tool_calls\":[")
            for (offset, call) in message.toolCalls.enumerated() {
                if offset > 0 { buffer.writeInteger(UInt8(ascii: ",")) }
                buffer.writeRaw("{\"id\":")
                buffer.writeJSONString(call.id)
                buffer.writeRaw(",\"type\":\"function\",\"function\":{\"name\":")
                buffer.writeJSONString(call.name)
                buffer.writeRaw(",\"arguments\":")
                buffer.writeJSONString(call.arguments)
                buffer.writeRaw("}}")
            }
            buffer.writeInteger(UInt8(ascii: "]"))
        }
        if let id = message.toolCallID {
            buffer.writeRaw(",\"tool_call_id\":")
            buffer.writeJSONString(id)
        }
        buffer.writeInteger(UInt8(ascii: "}"))
    }

    /// One content part, as ``OpenAIContentPart`` encodes it.
    private static func write(_ part: ContentPart, into buffer: inout ByteBuffer) {
        switch part {
        case .text(let text):
            buffer.writeRaw("{\"type\":\"text\",\"text\":")
            buffer.writeJSONString(text)
            buffer.writeInteger(UInt8(ascii: "}"))
        case .image(.url(let url, let detail)):
            buffer.writeRaw("{\"type\":\"image_url\",\"image_url\":{\"url\":")
            buffer.writeJSONString(url)
            if let detail {
                buffer.writeRaw(",\"detail\":")
                buffer.writeJSONString(detail)
            }
            buffer.writeRaw("}}")
        case .image(.base64(let data, let mediaType)):
            // "data:\(mediaType);base64,\(data)", escaped piece by piece.
            buffer.writeRaw("{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:")
            buffer.writeJSONStringContents(mediaType)
            buffer.writeRaw(";base64,")
            buffer.writeJSONStringContents(data)
            buffer.writeRaw("\"}}")
        }
    }

    /// A first guess at the body's size, so that the buffer rarely grows: the texts plus room for the framing.
    private var estimatedSize: Int {
        var size = 256 + request.tools.count * 512
        for message in request.messages {
            size += 48
            switch message.content {
            case .text(let text): size += text.utf8.count
            case .parts(let parts):
                for part in parts {
                    switch part {
                    case .text(let text): size += text.utf8.count + 32
                    case .image(.url(let url, _)): size += url.utf8.count + 64
                    case .image(.base64(let data, _)): size += data.utf8.count + 64
                    }
                }
            }
            for call in message.toolCalls { size += call.arguments.utf8.count + call.name.utf8.count + call.id.utf8.count + 64 }
        }
        return size
    }
}
