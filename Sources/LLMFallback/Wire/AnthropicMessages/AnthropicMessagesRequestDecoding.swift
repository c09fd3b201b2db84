import NIOCore

/// The server half of Anthropic Messages: what a gateway needs to take requests in Anthropic's format
/// (`POST /v1/messages`) and answer them in it.
///
/// ```swift
/// let decoded = try AnthropicMessagesServer.decodeRequest(body)
/// let answer = try await chain.chat(decoded.request)
/// let bytes = AnthropicMessagesServer.encodeResponse(answer, id: "msg_01", model: decoded.model)
/// ```
///
/// How a Messages request maps onto ``ChatRequest``:
///
/// - `system` (a string, or text blocks) becomes ``Role/system`` messages at the start, one per block.
/// - A user turn's `text` and `image` blocks become one user message; each `tool_result` block becomes a
///   ``Role/tool`` message answering its `tool_use_id`, in the order of the blocks. An assistant turn's text
///   becomes the message's text and its `tool_use` blocks its ``Message/toolCalls`` (`input` kept as JSON text,
///   members in order).
/// - `tools` (custom tools, `input_schema` as the parameters), `tool_choice` (`auto`, `any`, `tool`, `none`;
///   `disable_parallel_tool_use` as ``ChatRequest/parallelToolCalls`` `false`), `max_tokens`, `temperature`,
///   `top_p`, `stop_sequences`, `metadata.user_id` as ``ChatRequest/user``, and `thinking.budget_tokens` as the
///   ``ReasoningEffort`` whose budget is nearest. A JSON `output_format` (or `output_config.format`) becomes
///   ``ResponseFormat/jsonSchema(name:schema:strict:)``.
/// - What the neutral request has no place for is kept in ``ChatRequest/passthrough`` (the whole body, for a
///   provider that speaks Anthropic) and named: top-level members in ``PassthroughBody/unmodelledKeys``, nested
///   content (thinking blocks, `cache_control`, server tools, documents) in ``Request/unmappedContent``.
public enum AnthropicMessagesServer {
    /// A client's `POST /v1/messages`, decoded.
    public struct Request: Sendable {
        /// The request's `model`: for a gateway, the chain to ask.
        public var model: String
        /// The provider-neutral request, its ``ChatRequest/passthrough`` holding the client's body.
        public var request: ChatRequest
        /// Whether the answer is streamed as Server-Sent Events.
        public var stream: Bool
        /// What the body holds below its top level that ``request`` does not carry, for a provider of another
        /// format to report as dropped: `content.thinking` (a block type), `cache_control`, `tools.bash_20250124`
        /// (a tool type), `image.source.file`, `citations`. At most 32 names.
        public var unmappedContent: [String]
    }

    /// The top-level members ``decodeRequest(_:)`` maps onto ``ChatRequest``; every other member is kept only in
    /// the passthrough body. (`thinking` of a type other than `enabled` or `disabled`, and `output_config` members
    /// other than `format`, are not mapped either, and are then listed as unmodelled.)
    public static let modelledKeys: Set<String> = [
        "model", "messages", "system", "max_tokens", "temperature", "top_p", "stop_sequences", "stream", "tools",
        "tool_choice", "metadata", "thinking", "output_format", "output_config",
    ]

    /// Decodes a request body.
    ///
    /// The body is read by the package's one JSON parser, so its rules hold: a key repeated anywhere is refused
    /// (with the key named) rather than guessed at, nested values (tool schemas, tool inputs) keep their member
    /// order, and numbers keep their exact value. `max_tokens` is required, as Anthropic requires it.
    ///
    /// - Parameter body: The request body.
    /// - Returns: The request, its model and whether it streams.
    /// - Throws: ``WireRequestError`` naming what is wrong and where (`messages[2].content[0].tool_use_id`).
    public static func decodeRequest(_ body: ByteBuffer) throws(WireRequestError) -> Request {
        try decode(body, countingTokens: false)
    }

    /// Decodes a `POST /v1/messages/count_tokens` body: a Messages request without `max_tokens` (nor `stream`),
    /// which Anthropic refuses there.
    ///
    /// - Throws: ``WireRequestError`` naming what is wrong and where.
    public static func decodeCountTokensRequest(_ body: ByteBuffer) throws(WireRequestError) -> Request {
        try decode(body, countingTokens: true)
    }

    private static func decode(_ body: ByteBuffer, countingTokens: Bool) throws(WireRequestError) -> Request {
        guard body.readableBytes > 0 else {
            throw WireRequestError("the request body is empty: send a JSON object with 'model', 'max_tokens' and 'messages'")
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
        let declaredLimit = try reader.int("max_tokens")
        guard let maxTokens = declaredLimit ?? (countingTokens ? 1 : nil) else { throw .missing("max_tokens") }
        guard maxTokens >= 1 else {
            throw .value("'max_tokens' must be at least 1", param: "max_tokens")
        }
        guard let rawMessages = try reader.array("messages") else { throw .missing("messages") }
        guard !rawMessages.isEmpty else {
            throw .value("'messages' must contain at least one message", param: "messages")
        }

        var decoder = Decoder()
        var messages: [Message] = []
        messages.reserveCapacity(rawMessages.count + 1)
        try decoder.system(members["system"], into: &messages)
        for (offset, raw) in rawMessages.enumerated() {
            try decoder.message(raw, path: "messages[\(offset)]", into: &messages)
        }

        var request = ChatRequest(messages: messages)
        request.maxTokens = countingTokens ? declaredLimit : maxTokens
        request.temperature = try reader.double("temperature")
        request.topP = try reader.double("top_p")
        if let stops = try reader.array("stop_sequences") {
            for (offset, stop) in stops.enumerated() {
                guard case .string(let text) = stop else { throw .type("stop_sequences[\(offset)]", expected: "a string", got: stop) }
                request.stop.append(text)
            }
        }
        if let tools = try reader.array("tools") {
            for (offset, raw) in tools.enumerated() {
                if let tool = try decoder.tool(raw, path: "tools[\(offset)]") { request.tools.append(tool) }
            }
        }
        if let choice = try reader.object("tool_choice") {
            let choiceReader = MemberReader(choice, path: "tool_choice")
            let type = try choiceReader.requiredString("type")
            switch type {
            case "auto": request.toolChoice = .auto
            case "any": request.toolChoice = .required
            case "none": request.toolChoice = ToolChoice.none
            case "tool": request.toolChoice = .tool(try choiceReader.requiredString("name"))
            default:
                throw .value(
                    "invalid 'tool_choice.type' '\(type.prefix(64))': expected auto, any, tool or none", param: "tool_choice.type")
            }
            if try choiceReader.bool("disable_parallel_tool_use") == true { request.parallelToolCalls = false }
        }
        if let metadata = try reader.object("metadata") {
            request.user = try MemberReader(metadata, path: "metadata").string("user_id")
        }
        var unmodelled = members.keys.filter { !modelledKeys.contains($0) }
        if let thinking = try reader.object("thinking") {
            let thinkingReader = MemberReader(thinking, path: "thinking")
            switch try thinkingReader.requiredString("type") {
            case "enabled":
                guard let budget = try thinkingReader.int("budget_tokens") else { throw .missing("thinking.budget_tokens") }
                request.reasoningEffort = .nearest(toBudget: budget)
            case "disabled":
                break
            default:
                // `adaptive` and types added later: only an Anthropic provider can be sent them.
                unmodelled.append("thinking")
            }
        }
        request.responseFormat = try responseFormat(reader.object("output_format"), path: "output_format")
        if let config = try reader.object("output_config") {
            if let format = try responseFormat(MemberReader(config, path: "output_config").object("format"), path: "output_config.format") {
                request.responseFormat = format
            }
            if config.keys.contains(where: { $0 != "format" }) { unmodelled.append("output_config") }
        }
        let stream = try reader.bool("stream") ?? false
        request.passthrough = PassthroughBody(
            format: .anthropic,
            body: members,
            unmodelledKeys: unmodelled,
            messageCount: messages.count,
            unmappedContent: decoder.unmapped.names
        )
        return Request(model: model, request: request, stream: stream, unmappedContent: decoder.unmapped.names)
    }

    /// `output_format` / `output_config.format`: `{"type": "json_schema", "schema": {...}}`.
    private static func responseFormat(_ format: JSONObject?, path: String) throws(WireRequestError) -> ResponseFormat? {
        guard let format else { return nil }
        let reader = MemberReader(format, path: path)
        let type = try reader.requiredString("type")
        guard type == "json_schema" else {
            throw .value("invalid '\(path).type' '\(type.prefix(64))': expected json_schema", param: path + ".type")
        }
        guard let schema = format["schema"], schema != .null else { throw .missing(path + ".schema") }
        return .jsonSchema(name: "response", schema: schema)
    }

    /// The conversation's reading state: what was met that the neutral request does not carry.
    private struct Decoder {
        var unmapped = UnmappedContent()

        mutating func system(_ raw: JSONValue?, into messages: inout [Message]) throws(WireRequestError) {
            switch raw {
            case nil, .null?:
                return
            case .string(let text)?:
                if !text.isEmpty { messages.append(.system(text)) }
            case .array(let blocks)?:
                for (offset, block) in blocks.enumerated() {
                    let path = "system[\(offset)]"
                    guard case .object(let members) = block else { throw .type(path, expected: "an object", got: block) }
                    let reader = MemberReader(members, path: path)
                    let type = try reader.requiredString("type")
                    guard type == "text" else {
                        throw .value("invalid '\(path).type' '\(type.prefix(64))': system blocks are text blocks", param: path + ".type")
                    }
                    noteCommon(members)
                    let text = try reader.requiredString("text")
                    if !text.isEmpty { messages.append(.system(text)) }
                }
            case let other?:
                throw .type("system", expected: "a string or an array of text blocks", got: other)
            }
        }

        mutating func message(_ raw: JSONValue, path: String, into messages: inout [Message]) throws(WireRequestError) {
            guard case .object(let members) = raw else { throw .type(path, expected: "an object", got: raw) }
            let reader = MemberReader(members, path: path)
            let rawRole = try reader.requiredString("role")
            let role: Role
            switch rawRole {
            case "user": role = .user
            case "assistant": role = .assistant
            default:
                throw .value(
                    "invalid role '\(rawRole.prefix(64))' in '\(path)': expected user or assistant "
                        + "(the system prompt is the top-level 'system')",
                    param: path + ".role")
            }
            switch members["content"] {
            case .string(let text)?:
                messages.append(Message(role: role, content: .text(text)))
            case .array(let blocks)?:
                if role == .user {
                    try userTurn(blocks, path: path + ".content", into: &messages)
                } else {
                    messages.append(try assistantTurn(blocks, path: path + ".content"))
                }
            case nil, .null?:
                throw .missing(path + ".content")
            case let other?:
                throw .type(path + ".content", expected: "a string or an array of content blocks", got: other)
            }
        }

        /// A user turn: text and images as one message, each `tool_result` as a tool message, in order.
        private mutating func userTurn(_ blocks: [JSONValue], path: String, into messages: inout [Message]) throws(WireRequestError) {
            var parts: [ContentPart] = []
            var emitted = false
            func flush() {
                guard !parts.isEmpty else { return }
                messages.append(Message(role: .user, content: Self.content(parts, joiningText: false)))
                parts.removeAll()
                emitted = true
            }
            for (offset, block) in blocks.enumerated() {
                let blockPath = "\(path)[\(offset)]"
                let (type, members) = try Self.block(block, path: blockPath)
                switch type {
                case "tool_result":
                    flush()
                    messages.append(try toolResult(members, path: blockPath))
                    emitted = true
                case "tool_use":
                    throw .value("'\(blockPath)' is a tool_use block: those belong to assistant messages", param: blockPath + ".type")
                default:
                    if let part = try contentPart(type, members, path: blockPath) { parts.append(part) }
                }
            }
            flush()
            if !emitted { messages.append(Message(role: .user, content: .text(""))) }
        }

        private mutating func assistantTurn(_ blocks: [JSONValue], path: String) throws(WireRequestError) -> Message {
            var parts: [ContentPart] = []
            var calls: [ToolCall] = []
            for (offset, block) in blocks.enumerated() {
                let blockPath = "\(path)[\(offset)]"
                let (type, members) = try Self.block(block, path: blockPath)
                switch type {
                case "tool_use":
                    noteCommon(members)
                    let reader = MemberReader(members, path: blockPath)
                    let (id, state) = ProviderState.decodeID(try reader.requiredString("id"))
                    let name = try reader.requiredString("name")
                    let arguments: String
                    switch members["input"] {
                    case nil, .null?: arguments = "{}"
                    case .object(let input)?: arguments = JSONValue.object(input).jsonString
                    case let other?: throw .type(blockPath + ".input", expected: "an object", got: other)
                    }
                    calls.append(ToolCall(id: id, name: name, arguments: arguments, providerState: state))
                case "tool_result":
                    throw .value("'\(blockPath)' is a tool_result block: those belong to user messages", param: blockPath + ".type")
                default:
                    if let part = try contentPart(type, members, path: blockPath) { parts.append(part) }
                }
            }
            return Message(role: .assistant, content: Self.content(parts, joiningText: true), toolCalls: calls)
        }

        private mutating func toolResult(_ members: JSONObject, path: String) throws(WireRequestError) -> Message {
            noteCommon(members)
            let reader = MemberReader(members, path: path)
            let callID = ProviderState.decodeID(try reader.requiredString("tool_use_id")).id
            let isError = try reader.bool("is_error") == true
            let content: Content
            switch members["content"] {
            case nil, .null?:
                content = .text("")
            case .string(let text)?:
                content = .text(text)
            case .array(let blocks)?:
                var parts: [ContentPart] = []
                for (offset, block) in blocks.enumerated() {
                    let blockPath = "\(path).content[\(offset)]"
                    let (type, blockMembers) = try Self.block(block, path: blockPath)
                    if let part = try contentPart(type, blockMembers, path: blockPath) { parts.append(part) }
                }
                content = Self.content(parts, joiningText: true)
            case let other?:
                throw .type(path + ".content", expected: "a string or an array of content blocks", got: other)
            }
            var message = Message(role: .tool, content: content, toolCallID: callID)
            message.isError = isError
            return message
        }

        /// A text or image block's part; `nil` (noted as unmapped) for blocks the neutral model has no place for.
        private mutating func contentPart(_ type: String, _ members: JSONObject, path: String) throws(WireRequestError) -> ContentPart? {
            let reader = MemberReader(members, path: path)
            switch type {
            case "text":
                noteCommon(members)
                if members["citations"].map({ $0 != .null }) ?? false { unmapped.note("citations") }
                return .text(try reader.requiredString("text"))
            case "image":
                noteCommon(members)
                guard let source = try reader.object("source") else { throw .missing(path + ".source") }
                let sourceReader = MemberReader(source, path: path + ".source")
                let sourceType = try sourceReader.requiredString("type")
                switch sourceType {
                case "base64":
                    let data = try sourceReader.requiredString("data")
                    return .image(.base64(data, mediaType: try sourceReader.requiredString("media_type")))
                case "url":
                    return .image(.url(try sourceReader.requiredString("url")))
                default:
                    unmapped.note("image.source", sourceType)
                    return nil
                }
            default:
                // thinking, redacted_thinking, document, search_result, server tool blocks, and types added later.
                unmapped.note("content", type)
                return nil
            }
        }

        /// A custom tool; `nil` (noted as unmapped) for Anthropic's server and client tools (`bash_20250124`, ...).
        mutating func tool(_ raw: JSONValue, path: String) throws(WireRequestError) -> Tool? {
            guard case .object(let members) = raw else { throw .type(path, expected: "an object", got: raw) }
            let reader = MemberReader(members, path: path)
            if let type = try reader.string("type"), type != "custom" {
                unmapped.note("tools", type)
                return nil
            }
            noteCommon(members)
            var tool = Tool(name: try reader.requiredString("name"), description: try reader.string("description"))
            guard let schema = members["input_schema"], schema != .null else { throw .missing(path + ".input_schema") }
            guard case .object = schema else { throw .type(path + ".input_schema", expected: "an object", got: schema) }
            tool.parameters = schema
            tool.strict = try reader.bool("strict")
            return tool
        }

        /// Members any block or tool may carry that the neutral model drops.
        private mutating func noteCommon(_ members: JSONObject) {
            if let cache = members["cache_control"], cache != .null { unmapped.note("cache_control") }
        }

        /// A block's type and members.
        private static func block(_ raw: JSONValue, path: String) throws(WireRequestError) -> (String, JSONObject) {
            guard case .object(let members) = raw else { throw .type(path, expected: "an object", got: raw) }
            return (try MemberReader(members, path: path).requiredString("type"), members)
        }

        /// One text part as plain text; text parts joined when `joiningText` and there is no image; parts otherwise.
        static func content(_ parts: [ContentPart], joiningText: Bool) -> Content {
            if parts.isEmpty { return .text("") }
            if parts.count == 1, case .text(let text) = parts[0] { return .text(text) }
            if joiningText, !parts.contains(where: { if case .image = $0 { true } else { false } }) {
                return .text(Content.parts(parts).text)
            }
            return .parts(parts)
        }
    }
}
