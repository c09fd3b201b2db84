import NIOCore

/// The server half of OpenAI Chat Completions: what a gateway needs to take requests in OpenAI's format.
public enum OpenAIChatServer {
    /// A client's `POST /v1/chat/completions`, decoded.
    public struct Request: Sendable {
        /// The request's `model`: for a gateway, the chain to ask.
        public var model: String
        /// The provider-neutral request, its ``ChatRequest/passthrough`` holding the client's body.
        public var request: ChatRequest
        /// Whether the answer is streamed as Server-Sent Events.
        public var stream: Bool
        /// Whether a stream ends with a usage chunk (`stream_options.include_usage`).
        public var includeUsage: Bool
    }

    /// The top-level members ``decodeRequest(_:)`` maps onto ``ChatRequest``; every other member is kept only
    /// in the passthrough body (a provider of another format does not receive it, and it is reported as dropped).
    public static let modelledKeys: Set<String> = [
        "model", "messages", "temperature", "top_p", "max_tokens", "max_completion_tokens", "stop", "tools",
        "tool_choice", "parallel_tool_calls", "response_format", "seed", "user", "stream", "stream_options", "n",
        "reasoning_effort", "frequency_penalty", "presence_penalty", "logprobs", "top_logprobs",
    ]

    /// Decodes a request body.
    ///
    /// The body is read by the package's one JSON parser, so its rules hold: a key repeated anywhere is refused
    /// (with the key named) rather than guessed at, nested values keep their member order, and numbers keep their
    /// exact value. `n` other than 1 is refused: a chain answers once.
    ///
    /// - Throws: ``WireRequestError`` naming what is wrong and where.
    public static func decodeRequest(_ body: ByteBuffer) throws(WireRequestError) -> Request {
        guard body.readableBytes > 0 else {
            throw WireRequestError("the request body is empty: send a JSON object with 'model' and 'messages'")
        }
        let root: JSONValue
        do {
            root = try JSONParser.parse(body)
        } catch {
            throw .syntax(error)
        }
        guard case .object(let members) = root else {
            throw .type("body", expected: "an object", got: root)
        }
        let reader = MemberReader(members, path: "")
        let model = try reader.requiredString("model")
        guard case .array(let rawMessages)? = members["messages"] else {
            if let value = members["messages"], value != .null { throw .type("messages", expected: "an array", got: value) }
            throw .missing("messages")
        }
        guard !rawMessages.isEmpty else {
            throw .value("'messages' must contain at least one message", param: "messages")
        }
        if let n = try reader.int("n"), n != 1 {
            throw .value("'n' must be 1: the gateway returns one choice", param: "n")
        }
        var messages: [Message] = []
        messages.reserveCapacity(rawMessages.count)
        var carriesState = false
        for (offset, raw) in rawMessages.enumerated() {
            messages.append(try message(raw, path: "messages[\(offset)]", carriesState: &carriesState))
        }
        var request = ChatRequest(messages: messages)
        request.temperature = try reader.double("temperature")
        request.topP = try reader.double("top_p")
        let maxCompletionTokens = try reader.int("max_completion_tokens")
        let maxTokens = try reader.int("max_tokens")
        request.maxTokens = maxCompletionTokens ?? maxTokens
        switch members["stop"] {
        case nil, .null?: break
        case .string(let stop)?: request.stop = [stop]
        case .array(let stops)?:
            for (offset, stop) in stops.enumerated() {
                guard case .string(let text) = stop else { throw .type("stop[\(offset)]", expected: "a string", got: stop) }
                request.stop.append(text)
            }
        case let other?: throw .type("stop", expected: "a string or an array of strings", got: other)
        }
        if let tools = try reader.array("tools") {
            for (offset, raw) in tools.enumerated() {
                request.tools.append(try tool(raw, path: "tools[\(offset)]"))
            }
        }
        request.toolChoice = try toolChoice(members["tool_choice"])
        request.parallelToolCalls = try reader.bool("parallel_tool_calls")
        request.responseFormat = try responseFormat(members["response_format"])
        request.seed = try reader.int("seed")
        request.user = try reader.string("user")
        request.reasoningEffort = try reader.string("reasoning_effort").map(ReasoningEffort.init(rawValue:))
        request.frequencyPenalty = try reader.double("frequency_penalty")
        request.presencePenalty = try reader.double("presence_penalty")
        request.logprobs = try reader.bool("logprobs")
        request.topLogprobs = try reader.int("top_logprobs")
        let stream = try reader.bool("stream") ?? false
        var includeUsage = false
        if let options = try reader.object("stream_options") {
            includeUsage = try MemberReader(options, path: "stream_options").bool("include_usage") ?? false
        }
        request.passthrough = PassthroughBody(
            format: .openAI,
            body: members,
            unmodelledKeys: members.keys.filter { !modelledKeys.contains($0) },
            messageCount: messages.count,
            messagesCarryProviderState: carriesState
        )
        return Request(model: model, request: request, stream: stream, includeUsage: includeUsage)
    }

    /// The role an OpenAI message's `role` names (`developer` is the newer name for `system`); `nil` for others.
    public static func role(_ raw: String) -> Role? {
        switch raw {
        case "system", "developer": return .system
        case "user": return .user
        case "assistant": return .assistant
        case "tool": return .tool
        default: return nil
        }
    }

    /// One message; `carriesState` is set when one of its tool call ids carries ``ProviderState``.
    private static func message(_ raw: JSONValue, path: String, carriesState: inout Bool) throws(WireRequestError) -> Message {
        guard case .object(let members) = raw else { throw .type(path, expected: "an object", got: raw) }
        let reader = MemberReader(members, path: path)
        let rawRole = try reader.requiredString("role")
        guard let role = role(rawRole) else {
            throw .value(
                "invalid role '\(rawRole.prefix(64))' in '\(path)': expected system, developer, user, assistant or tool",
                param: path + ".role")
        }
        var message = Message(role: role, content: .text(""))
        switch members["content"] {
        case nil, .null?:
            guard role == .assistant else {
                throw WireRequestError(
                    "missing required parameter: '\(path).content' (only assistant messages may omit it)",
                    param: path + ".content", code: "missing_required_parameter")
            }
        case .string(let text)?:
            message.content = .text(text)
        case .array(let rawParts)?:
            var parts: [ContentPart] = []
            parts.reserveCapacity(rawParts.count)
            for (offset, part) in rawParts.enumerated() {
                parts.append(try contentPart(part, path: "\(path).content[\(offset)]"))
            }
            message.content = .parts(parts)
        case let other?:
            throw .type(path + ".content", expected: "a string or an array of content parts", got: other)
        }
        message.name = try reader.string("name")
        if let calls = try reader.array("tool_calls") {
            for (offset, call) in calls.enumerated() {
                let decoded = try toolCall(call, path: "\(path).tool_calls[\(offset)]")
                if decoded.providerState != nil { carriesState = true }
                message.toolCalls.append(decoded)
            }
        }
        if let id = try reader.string("tool_call_id") {
            let decoded = ProviderState.decodeID(id)
            if decoded.state != nil { carriesState = true }
            message.toolCallID = decoded.id
        } else if role == .tool {
            throw WireRequestError(
                "missing required parameter: '\(path).tool_call_id' (tool messages answer a tool call)",
                param: path + ".tool_call_id", code: "missing_required_parameter")
        }
        return message
    }

    private static func contentPart(_ raw: JSONValue, path: String) throws(WireRequestError) -> ContentPart {
        guard case .object(let members) = raw else { throw .type(path, expected: "an object", got: raw) }
        let reader = MemberReader(members, path: path)
        let type = try reader.requiredString("type")
        switch type {
        case "text":
            return .text(try reader.requiredString("text"))
        case "refusal":
            return .text(try reader.requiredString("refusal"))
        case "image_url":
            switch members["image_url"] {
            case .string(let url)?:
                return .image(.url(url, detail: nil))
            case .object(let image)?:
                let imageReader = MemberReader(image, path: path + ".image_url")
                return .image(.url(try imageReader.requiredString("url"), detail: try imageReader.string("detail")))
            case nil, .null?:
                throw .missing(path + ".image_url")
            case let other?:
                throw .type(path + ".image_url", expected: "an object", got: other)
            }
        default:
            throw .value(
                "unsupported content part type '\(type.prefix(64))' in '\(path)': the gateway takes 'text' and 'image_url' parts",
                param: path + ".type")
        }
    }

    private static func toolCall(_ raw: JSONValue, path: String) throws(WireRequestError) -> ToolCall {
        guard case .object(let members) = raw else { throw .type(path, expected: "an object", got: raw) }
        let reader = MemberReader(members, path: path)
        let encodedID = try reader.requiredString("id")
        guard let function = try reader.object("function") else { throw .missing(path + ".function") }
        let functionReader = MemberReader(function, path: path + ".function")
        let name = try functionReader.requiredString("name")
        let arguments = try functionReader.string("arguments") ?? "{}"
        let (id, state) = ProviderState.decodeID(encodedID)
        return ToolCall(id: id, name: name, arguments: arguments, providerState: state)
    }

    private static func tool(_ raw: JSONValue, path: String) throws(WireRequestError) -> Tool {
        guard case .object(let members) = raw else { throw .type(path, expected: "an object", got: raw) }
        let reader = MemberReader(members, path: path)
        let type = try reader.string("type") ?? "function"
        guard type == "function" else {
            throw .value(
                "unsupported tool type '\(type.prefix(64))' in '\(path)': the gateway takes 'function' tools", param: path + ".type")
        }
        guard let function = try reader.object("function") else { throw .missing(path + ".function") }
        let functionReader = MemberReader(function, path: path + ".function")
        var tool = Tool(name: try functionReader.requiredString("name"), description: try functionReader.string("description"))
        if let parameters = function["parameters"], parameters != .null { tool.parameters = parameters }
        tool.strict = try functionReader.bool("strict")
        return tool
    }

    private static func toolChoice(_ raw: JSONValue?) throws(WireRequestError) -> ToolChoice? {
        switch raw {
        case nil, .null?: return nil
        case .string("auto")?: return .auto
        case .string("none")?: return ToolChoice.none
        case .string("required")?: return .required
        case .string(let other)?:
            throw .value(
                "invalid 'tool_choice' '\(other.prefix(64))': expected auto, none, required or a function", param: "tool_choice")
        case .object(let members)?:
            guard case .object(let function)? = members["function"] else { throw .missing("tool_choice.function") }
            let reader = MemberReader(function, path: "tool_choice.function")
            return .tool(try reader.requiredString("name"))
        case let other?:
            throw .type("tool_choice", expected: "a string or an object", got: other)
        }
    }

    private static func responseFormat(_ raw: JSONValue?) throws(WireRequestError) -> ResponseFormat? {
        switch raw {
        case nil, .null?: return nil
        case .object(let members)?:
            let reader = MemberReader(members, path: "response_format")
            let type = try reader.requiredString("type")
            switch type {
            case "text": return .text
            case "json_object": return .jsonObject
            case "json_schema":
                guard let schema = try reader.object("json_schema") else { throw .missing("response_format.json_schema") }
                let schemaReader = MemberReader(schema, path: "response_format.json_schema")
                let name = try schemaReader.requiredString("name")
                let body = schema["schema"].flatMap { $0 == .null ? nil : $0 } ?? ["type": "object"]
                return .jsonSchema(name: name, schema: body, strict: try schemaReader.bool("strict"))
            default:
                throw .value(
                    "invalid 'response_format.type' '\(type.prefix(64))': expected text, json_object or json_schema",
                    param: "response_format.type")
            }
        case let other?:
            throw .type("response_format", expected: "an object", got: other)
        }
    }
}

/// Typed reads of an object's optional members, with errors that name the member's path.
struct MemberReader {
    let members: JSONObject
    let path: String

    init(_ members: JSONObject, path: String) {
        self.members = members
        self.path = path
    }

    private func path(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    func string(_ key: String) throws(WireRequestError) -> String? {
        switch members[key] {
        case nil, .null?: return nil
        case .string(let value)?: return value
        case let other?: throw .type(path(key), expected: "a string", got: other)
        }
    }

    func requiredString(_ key: String) throws(WireRequestError) -> String {
        guard let value = try string(key) else { throw .missing(path(key)) }
        return value
    }

    func bool(_ key: String) throws(WireRequestError) -> Bool? {
        switch members[key] {
        case nil, .null?: return nil
        case .bool(let value)?: return value
        case let other?: throw .type(path(key), expected: "a boolean", got: other)
        }
    }

    /// An integer: written without a fraction or exponent, within `Int`'s range.
    func int(_ key: String) throws(WireRequestError) -> Int? {
        switch members[key] {
        case nil, .null?: return nil
        case .int(let value)?: return value
        case .double(let value)? where value.rounded() == value && abs(value) < 9e15: return Int(value)
        case let other?: throw .type(path(key), expected: "an integer", got: other)
        }
    }

    /// A finite number.
    func double(_ key: String) throws(WireRequestError) -> Double? {
        switch members[key] {
        case nil, .null?: return nil
        case .int(let value)?: return Double(value)
        case .double(let value)?: return value
        case .number(let text)?:
            guard let value = Double(text), value.isFinite else {
                throw .value("'\(path(key))' is out of range: \(text.prefix(32))", param: path(key))
            }
            return value
        case let other?: throw .type(path(key), expected: "a number", got: other)
        }
    }

    func array(_ key: String) throws(WireRequestError) -> [JSONValue]? {
        switch members[key] {
        case nil, .null?: return nil
        case .array(let value)?: return value
        case let other?: throw .type(path(key), expected: "an array", got: other)
        }
    }

    func object(_ key: String) throws(WireRequestError) -> JSONObject? {
        switch members[key] {
        case nil, .null?: return nil
        case .object(let value)?: return value
        case let other?: throw .type(path(key), expected: "an object", got: other)
        }
    }
}
