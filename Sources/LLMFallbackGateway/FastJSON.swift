import LLMFallback

// MARK: - The request from parsed JSON

extension ChatCompletionRequest {
    /// The fast path: a request built from ``FastJSONParser``'s tree, or `nil` when anything is unexpected (the
    /// `Codable` path then decides, and explains).
    init?(node root: JSONNode) {
        guard case .object = root, let model = root["model"]?.string else { return nil }
        guard case .array(let rawMessages)? = root["messages"], !rawMessages.isEmpty else { return nil }
        if let n = root["n"], !n.isNull {
            guard case .int(1) = n else { return nil }
        }
        var messages: [Message] = []
        messages.reserveCapacity(rawMessages.count)
        for raw in rawMessages {
            guard let message = Self.message(raw) else { return nil }
            messages.append(message)
        }
        var request = ChatRequest(messages: messages)
        guard Self.optionalDouble(root["temperature"], into: &request.temperature),
            Self.optionalDouble(root["top_p"], into: &request.topP)
        else { return nil }
        var maxTokens: Int?
        var maxCompletionTokens: Int?
        guard Self.optionalInt(root["max_tokens"], into: &maxTokens),
            Self.optionalInt(root["max_completion_tokens"], into: &maxCompletionTokens),
            Self.optionalInt(root["seed"], into: &request.seed)
        else { return nil }
        request.maxTokens = maxCompletionTokens ?? maxTokens
        switch root["stop"] {
        case nil, .null?: break
        case .string(let stop)?: request.stop = [stop]
        case .array(let stops)?:
            for stop in stops {
                guard let text = stop.string else { return nil }
                request.stop.append(text)
            }
        default: return nil
        }
        switch root["tools"] {
        case nil, .null?: break
        case .array(let tools)?:
            for tool in tools {
                guard let parsed = Self.tool(tool) else { return nil }
                request.tools.append(parsed)
            }
        default: return nil
        }
        switch root["tool_choice"] {
        case nil, .null?: break
        case .string("auto")?: request.toolChoice = .auto
        case .string("none")?: request.toolChoice = ToolChoice.none
        case .string("required")?: request.toolChoice = .required
        case let choice? where choice["function"]?["name"]?.string != nil:
            request.toolChoice = .tool(choice["function"]!["name"]!.string!)
        default: return nil
        }
        switch root["parallel_tool_calls"] {
        case nil, .null?: break
        case .bool(let value)?: request.parallelToolCalls = value
        default: return nil
        }
        switch root["response_format"] {
        case nil, .null?: break
        case let format?:
            switch format["type"]?.string {
            case "text": request.responseFormat = .text
            case "json_object": request.responseFormat = .jsonObject
            case "json_schema":
                guard let schema = format["json_schema"], let name = schema["name"]?.string else { return nil }
                var strict: Bool?
                switch schema["strict"] {
                case nil, .null?: break
                case .bool(let value)?: strict = value
                default: return nil
                }
                let body = schema["schema"].flatMap { $0.isNull ? nil : $0.jsonValue } ?? ["type": "object"]
                request.responseFormat = .jsonSchema(name: name, schema: body, strict: strict)
            default: return nil
            }
        }
        switch root["user"] {
        case nil, .null?: break
        case .string(let user)?: request.user = user
        default: return nil
        }
        var stream = false
        switch root["stream"] {
        case nil, .null?: break
        case .bool(let value)?: stream = value
        default: return nil
        }
        var includeUsage = false
        switch root["stream_options"] {
        case nil, .null?: break
        case let options? where { if case .object = options { true } else { false } }():
            switch options["include_usage"] {
            case nil, .null?: break
            case .bool(let value)?: includeUsage = value
            default: return nil
            }
        default: return nil
        }
        self.init(model: model, request: request, stream: stream, includeUsage: includeUsage)
    }

    private static func optionalDouble(_ node: JSONNode?, into value: inout Double?) -> Bool {
        switch node {
        case nil, .null?: return true
        case .int(let number)?: value = Double(number)
        case .double(let number)?: value = number
        default: return false
        }
        return true
    }

    private static func optionalInt(_ node: JSONNode?, into value: inout Int?) -> Bool {
        switch node {
        case nil, .null?: return true
        case .int(let number)?: value = number
        default: return false
        }
        return true
    }

    private static func message(_ node: JSONNode) -> Message? {
        guard case .object = node, let role = node["role"]?.string.flatMap(WireMessage.role) else { return nil }
        var message = Message(role: role, content: .text(""))
        switch node["content"] {
        case nil, .null?:
            guard role == .assistant else { return nil }
        case .string(let text)?:
            message.content = .text(text)
        case .array(let rawParts)?:
            var parts: [ContentPart] = []
            parts.reserveCapacity(rawParts.count)
            for raw in rawParts {
                switch raw["type"]?.string {
                case "text":
                    guard let text = raw["text"]?.string else { return nil }
                    parts.append(.text(text))
                case "refusal":
                    guard let text = raw["refusal"]?.string else { return nil }
                    parts.append(.text(text))
                case "image_url":
                    switch raw["image_url"] {
                    case .string(let url)?:
                        parts.append(.image(.url(url, detail: nil)))
                    case let image? where image["url"]?.string != nil:
                        var detail: String?
                        switch image["detail"] {
                        case nil, .null?: break
                        case .string(let value)?: detail = value
                        default: return nil
                        }
                        parts.append(.image(.url(image["url"]!.string!, detail: detail)))
                    default: return nil
                    }
                default: return nil
                }
            }
            message.content = .parts(parts)
        default:
            return nil
        }
        switch node["name"] {
        case nil, .null?: break
        case .string(let name)?: message.name = name
        default: return nil
        }
        switch node["tool_calls"] {
        case nil, .null?: break
        case .array(let calls)?:
            for call in calls {
                guard let id = call["id"]?.string, let function = call["function"], let name = function["name"]?.string else { return nil }
                var arguments = "{}"
                switch function["arguments"] {
                case nil, .null?: break
                case .string(let value)?: arguments = value
                default: return nil
                }
                message.toolCalls.append(ToolCall(id: id, name: name, arguments: arguments))
            }
        default: return nil
        }
        switch node["tool_call_id"] {
        case nil, .null?: if role == .tool { return nil }
        case .string(let id)?: message.toolCallID = id
        default: return nil
        }
        return message
    }

    private static func tool(_ node: JSONNode) -> Tool? {
        switch node["type"] {
        case nil, .null?, .string("function")?: break
        default: return nil
        }
        guard let function = node["function"], let name = function["name"]?.string else { return nil }
        var tool = Tool(name: name)
        switch function["description"] {
        case nil, .null?: break
        case .string(let description)?: tool.description = description
        default: return nil
        }
        switch function["parameters"] {
        case nil, .null?: break
        case let parameters?: tool.parameters = parameters.jsonValue
        }
        switch function["strict"] {
        case nil, .null?: break
        case .bool(let strict)?: tool.strict = strict
        default: return nil
        }
        return tool
    }
}
