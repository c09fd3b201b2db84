import Foundation
import LLMFallback
import NIOCore
import NIOFoundationCompat

/// An OpenAI `POST /v1/chat/completions` body, decoded in one `Codable` pass straight into the library's
/// ``ChatRequest``.
///
/// Every field the chat model knows is mapped; fields it does not know (`frequency_penalty`, `logit_bias`,
/// `metadata`, ...) are ignored, as OpenAI-compatible gateways do. `n` other than 1 is refused: a chain answers once.
struct ChatCompletionRequest: Decodable, Sendable {
    /// The chain to ask (the request's `model`).
    var model: String
    /// The provider-neutral request.
    var request: ChatRequest
    /// Whether the answer is streamed as Server-Sent Events.
    var stream: Bool
    /// Whether a stream ends with a usage chunk (`stream_options.include_usage`).
    var includeUsage: Bool

    enum Keys: String, CodingKey {
        case model, messages, temperature, top_p, max_tokens, max_completion_tokens, stop, tools, tool_choice
        case parallel_tool_calls, response_format, seed, user, stream, stream_options, n
    }

    enum StreamOptionsKeys: String, CodingKey { case include_usage }

    init(model: String, request: ChatRequest, stream: Bool, includeUsage: Bool) {
        self.model = model
        self.request = request
        self.stream = stream
        self.includeUsage = includeUsage
    }

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: Keys.self)
        model = try container.decode(String.self, forKey: .model)
        let messages = try container.decode([WireMessage].self, forKey: .messages)
        guard !messages.isEmpty else {
            throw RequestValidationError("'messages' must contain at least one message", param: "messages")
        }
        if let n = try container.decodeIfPresent(Int.self, forKey: .n), n != 1 {
            throw RequestValidationError("'n' must be 1: the gateway returns one choice", param: "n")
        }
        var request = ChatRequest(messages: messages.map(\.message))
        request.temperature = try container.decodeIfPresent(Double.self, forKey: .temperature)
        request.topP = try container.decodeIfPresent(Double.self, forKey: .top_p)
        request.maxTokens =
            try container.decodeIfPresent(Int.self, forKey: .max_completion_tokens)
            ?? container.decodeIfPresent(Int.self, forKey: .max_tokens)
        if let stop = try container.decodeIfPresent(StopSequences.self, forKey: .stop) {
            request.stop = stop.values
        }
        if let tools = try container.decodeIfPresent([WireTool].self, forKey: .tools) {
            request.tools = tools.map(\.tool)
        }
        request.toolChoice = try container.decodeIfPresent(WireToolChoice.self, forKey: .tool_choice)?.choice
        request.parallelToolCalls = try container.decodeIfPresent(Bool.self, forKey: .parallel_tool_calls)
        request.responseFormat = try container.decodeIfPresent(WireResponseFormat.self, forKey: .response_format)?.format
        request.seed = try container.decodeIfPresent(Int.self, forKey: .seed)
        request.user = try container.decodeIfPresent(String.self, forKey: .user)
        self.request = request
        stream = try container.decodeIfPresent(Bool.self, forKey: .stream) ?? false
        if container.contains(.stream_options), try !container.decodeNil(forKey: .stream_options) {
            let options = try container.nestedContainer(keyedBy: StreamOptionsKeys.self, forKey: .stream_options)
            includeUsage = try options.decodeIfPresent(Bool.self, forKey: .include_usage) ?? false
        } else {
            includeUsage = false
        }
    }

    /// Decodes a request body, turning every decoding failure into a `400` that says what was wrong.
    ///
    /// A valid request takes the fast path (``FastJSONParser`` and ``init(node:)``); anything else goes through
    /// `JSONDecoder`, whose errors name the offending field.
    ///
    /// - Throws: ``GatewayError`` (`400 invalid_request_error`).
    static func decode(_ body: ByteBuffer, using decoder: JSONDecoder) throws(GatewayError) -> ChatCompletionRequest {
        guard body.readableBytes > 0 else {
            throw GatewayError.invalidRequest("the request body is empty: send a JSON object with 'model' and 'messages'")
        }
        if let node = FastJSONParser.parse(body), let request = ChatCompletionRequest(node: node) {
            return request
        }
        return try decodeWithDiagnostics(body, using: decoder)
    }

    /// The `Codable` path: slower, and precise about what is wrong.
    static func decodeWithDiagnostics(_ body: ByteBuffer, using decoder: JSONDecoder) throws(GatewayError) -> ChatCompletionRequest {
        do {
            return try decoder.decode(ChatCompletionRequest.self, from: body)
        } catch let error as RequestValidationError {
            throw GatewayError.invalidRequest(error.message, param: error.param)
        } catch let error as DecodingError {
            throw GatewayError.decoding(error)
        } catch {
            throw GatewayError.invalidRequest("the request body could not be read: \(error)")
        }
    }
}

/// A request that is valid JSON but not a valid chat request.
struct RequestValidationError: Error {
    var message: String
    var param: String?

    init(_ message: String, param: String? = nil) {
        self.message = message
        self.param = param
    }
}

/// `stop`: a string, an array of strings, or null.
struct StopSequences: Decodable {
    var values: [String]

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            values = []
        } else if let single = try? container.decode(String.self) {
            values = [single]
        } else {
            values = try container.decode([String].self)
        }
    }
}

/// One message of the conversation.
struct WireMessage: Decodable {
    var message: Message

    enum Keys: String, CodingKey { case role, content, name, tool_calls, tool_call_id }

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: Keys.self)
        let rawRole = try container.decode(String.self, forKey: .role)
        guard let role = Self.role(rawRole) else {
            let path = Self.path(of: container.codingPath)
            throw RequestValidationError(
                "invalid role '\(rawRole)' in '\(path)': expected system, developer, user, assistant or tool",
                param: path + ".role"
            )
        }
        let toolCalls = try container.decodeIfPresent([WireToolCall].self, forKey: .tool_calls)?.map(\.call) ?? []
        let content: Content
        if try !container.contains(.content) || container.decodeNil(forKey: .content) {
            guard role == .assistant else {
                let path = Self.path(of: container.codingPath)
                throw RequestValidationError(
                    "missing required parameter: '\(path).content' (only assistant messages may omit it)",
                    param: path + ".content"
                )
            }
            content = .text("")
        } else {
            content = try container.decode(WireContent.self, forKey: .content).content
        }
        let toolCallID = try container.decodeIfPresent(String.self, forKey: .tool_call_id)
        if role == .tool && toolCallID == nil {
            let path = Self.path(of: container.codingPath)
            throw RequestValidationError(
                "missing required parameter: '\(path).tool_call_id' (tool messages answer a tool call)",
                param: path + ".tool_call_id"
            )
        }
        message = Message(
            role: role,
            content: content,
            name: try container.decodeIfPresent(String.self, forKey: .name),
            toolCalls: toolCalls,
            toolCallID: toolCallID
        )
    }

    /// The role an OpenAI message's `role` names (`developer` is the newer name for `system`); `nil` for others.
    static func role(_ raw: String) -> Role? {
        switch raw {
        case "system", "developer": return .system
        case "user": return .user
        case "assistant": return .assistant
        case "tool": return .tool
        default: return nil
        }
    }

    static func path(of codingPath: [any CodingKey]) -> String {
        GatewayError.path(of: codingPath)
    }
}

/// `content`: a string or an array of parts.
struct WireContent: Decodable {
    var content: Content

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let text = try? container.decode(String.self) {
            content = .text(text)
        } else {
            let parts = try container.decode([WirePart].self)
            content = .parts(parts.compactMap(\.part))
        }
    }
}

/// One content part: `text`, `image_url` (or `refusal`, kept as text in an assistant's history).
struct WirePart: Decodable {
    var part: ContentPart?

    enum Keys: String, CodingKey { case type, text, image_url, refusal }
    enum ImageKeys: String, CodingKey { case url, detail }

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: Keys.self)
        let type = try container.decode(String.self, forKey: .type)
        switch type {
        case "text":
            part = .text(try container.decode(String.self, forKey: .text))
        case "refusal":
            part = .text(try container.decode(String.self, forKey: .refusal))
        case "image_url":
            if let url = try? container.decode(String.self, forKey: .image_url) {
                part = .image(.url(url, detail: nil))
            } else {
                let image = try container.nestedContainer(keyedBy: ImageKeys.self, forKey: .image_url)
                part = .image(
                    .url(
                        try image.decode(String.self, forKey: .url),
                        detail: try image.decodeIfPresent(String.self, forKey: .detail)
                    )
                )
            }
        default:
            let path = GatewayError.path(of: container.codingPath)
            throw RequestValidationError(
                "unsupported content part type '\(type)' in '\(path)': the gateway takes 'text' and 'image_url' parts",
                param: path + ".type"
            )
        }
    }
}

/// A tool call in an assistant message.
struct WireToolCall: Decodable {
    var call: ToolCall

    enum Keys: String, CodingKey { case id, type, function }
    enum FunctionKeys: String, CodingKey { case name, arguments }

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: Keys.self)
        let function = try container.nestedContainer(keyedBy: FunctionKeys.self, forKey: .function)
        call = ToolCall(
            id: try container.decode(String.self, forKey: .id),
            name: try function.decode(String.self, forKey: .name),
            arguments: try function.decodeIfPresent(String.self, forKey: .arguments) ?? "{}"
        )
    }
}

/// A tool definition: `{"type":"function","function":{"name","description","parameters","strict"}}`.
struct WireTool: Decodable {
    var tool: Tool

    enum Keys: String, CodingKey { case type, function }
    enum FunctionKeys: String, CodingKey { case name, description, parameters, strict }

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: Keys.self)
        let type = try container.decodeIfPresent(String.self, forKey: .type) ?? "function"
        guard type == "function" else {
            let path = GatewayError.path(of: container.codingPath)
            throw RequestValidationError(
                "unsupported tool type '\(type)' in '\(path)': the gateway takes 'function' tools",
                param: path + ".type"
            )
        }
        let function = try container.nestedContainer(keyedBy: FunctionKeys.self, forKey: .function)
        var tool = Tool(
            name: try function.decode(String.self, forKey: .name),
            description: try function.decodeIfPresent(String.self, forKey: .description)
        )
        if let parameters = try function.decodeIfPresent(JSONValue.self, forKey: .parameters) {
            tool.parameters = parameters
        }
        tool.strict = try function.decodeIfPresent(Bool.self, forKey: .strict)
        self.tool = tool
    }
}

/// `tool_choice`: `"auto"`, `"none"`, `"required"` or `{"type":"function","function":{"name":...}}`.
struct WireToolChoice: Decodable {
    var choice: ToolChoice

    enum Keys: String, CodingKey { case type, function }
    enum FunctionKeys: String, CodingKey { case name }

    init(from decoder: any Decoder) throws {
        if let single = try? decoder.singleValueContainer().decode(String.self) {
            switch single {
            case "auto": choice = .auto
            case "none": choice = .none
            case "required": choice = .required
            default:
                throw RequestValidationError(
                    "invalid 'tool_choice' '\(single)': expected auto, none, required or a function",
                    param: "tool_choice"
                )
            }
            return
        }
        let container = try decoder.container(keyedBy: Keys.self)
        let function = try container.nestedContainer(keyedBy: FunctionKeys.self, forKey: .function)
        choice = .tool(try function.decode(String.self, forKey: .name))
    }
}

/// `response_format`: `text`, `json_object` or `json_schema`.
struct WireResponseFormat: Decodable {
    var format: ResponseFormat

    enum Keys: String, CodingKey { case type, json_schema }
    enum SchemaKeys: String, CodingKey { case name, schema, strict }

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: Keys.self)
        let type = try container.decode(String.self, forKey: .type)
        switch type {
        case "text":
            format = .text
        case "json_object":
            format = .jsonObject
        case "json_schema":
            let schema = try container.nestedContainer(keyedBy: SchemaKeys.self, forKey: .json_schema)
            format = .jsonSchema(
                name: try schema.decode(String.self, forKey: .name),
                schema: try schema.decodeIfPresent(JSONValue.self, forKey: .schema) ?? ["type": "object"],
                strict: try schema.decodeIfPresent(Bool.self, forKey: .strict)
            )
        default:
            throw RequestValidationError(
                "invalid 'response_format.type' '\(type)': expected text, json_object or json_schema",
                param: "response_format.type"
            )
        }
    }
}
