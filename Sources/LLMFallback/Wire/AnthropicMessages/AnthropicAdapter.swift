import Foundation
import NIOFoundationCompat
import NIOCore
import NIOHTTP1

/// Anthropic Messages (`POST {baseURL}/v1/messages`), with `x-api-key: KEY` and `anthropic-version`.
///
/// How the provider-neutral request maps onto the Messages API:
///
/// - System messages are hoisted into the top-level `system` field, joined with blank lines.
/// - Tool results (``Role/tool`` messages) become `tool_result` blocks inside a user turn; an assistant's tool calls
///   become `tool_use` blocks after its text. Consecutive turns of the same role are merged, as the API requires
///   strictly alternating turns.
/// - `max_tokens` is always sent, since the API requires it: ``ChatRequest/maxTokens`` or ``defaultMaxTokens``.
/// - The API has no `response_format`: for ``ResponseFormat/jsonObject`` and ``ResponseFormat/jsonSchema(name:schema:strict:)``
///   an instruction to answer with only a JSON object (quoting the schema, for the latter) is appended to the
///   system prompt. The answer is not validated.
/// - ``ChatRequest/seed``, the penalties and log probabilities have no counterpart: they are not sent, and are
///   reported as dropped (``ChatResponse/droppedParameters``). ``ChatRequest/parallelToolCalls`` `false` becomes
///   `tool_choice.disable_parallel_tool_use`.
/// - ``ChatRequest/reasoningEffort`` becomes extended thinking with a budget (`minimal` 1,024 tokens, `low` 2,048,
///   `medium` 8,192, `high` 24,576; `none` no thinking), `max_tokens` raised above the budget when needed; thinking
///   allows no `temperature` or `top_p`, which are then dropped and reported.
/// - Usage: ``Usage/promptTokens`` counts every input token, cache reads and writes included (Anthropic's
///   `input_tokens` excludes them); ``Usage/cachedTokens`` is `cache_read_input_tokens`.
public struct AnthropicAdapter: ProviderAdapter {
    /// The `max_tokens` sent when the request sets no ``ChatRequest/maxTokens`` (the API requires the field).
    public static let defaultMaxTokens = 4096

    /// The `anthropic-version` header sent when the provider sets no ``Provider/apiVersion``.
    public static let defaultAPIVersion = "2023-06-01"

    /// Creates the adapter.
    public init() {}

    public func makeRequest(_ request: ChatRequest, for provider: ResolvedProvider, stream: Bool) throws(ProviderError) -> HTTPRequestParts {
        let passthrough = request.passthrough?.format == .anthropic ? request.passthrough : nil
        let headers = Self.headers(for: provider, passthrough: passthrough, stream: stream)
        if let passthrough {
            let bytes = try Self.writePassthrough(
                passthrough, request: request, model: provider.provider.model, stream: stream,
                dropping: provider.provider.dropParameters
            )
            return HTTPRequestParts(method: .POST, url: "\(provider.baseURL)/v1/messages", headers: headers, body: bytes)
        }
        let conversation = try Self.conversation(request.messages)
        var system = conversation.system
        if let instruction = Self.jsonInstruction(for: request.responseFormat) { system.append(instruction) }
        let body = AnthropicRequestBody(
            request: request,
            model: provider.provider.model,
            system: system.isEmpty ? nil : system.joined(separator: "\n\n"),
            messages: conversation.turns.map(\.json),
            stream: stream
        )
        return HTTPRequestParts(method: .POST, url: "\(provider.baseURL)/v1/messages", headers: headers, body: try WireJSON.write(body.json))
    }

    /// The provider's prefill, except for a request with extended thinking, which Anthropic does not let a prefill
    /// start.
    public func assistantPrefill(for request: ChatRequest, provider: ResolvedProvider) -> AssistantPrefill {
        if request.reasoningEffort?.thinkingBudget != nil { return .unsupported }
        if let passthrough = request.passthrough, passthrough.format == .anthropic,
            let type = passthrough.body["thinking"]?["type"]?.stringValue, type != "disabled"
        {
            return .unsupported
        }
        return provider.assistantPrefill
    }

    public func droppedParameters(in request: ChatRequest, for provider: ResolvedProvider) -> [String] {
        if let passthrough = request.passthrough, passthrough.format == .anthropic {
            return provider.provider.dropParameters.filter { passthrough.body.contains(key: $0) }
        }
        return AnthropicRequestBody.droppedParameters(of: request)
    }

    /// The JSON headers, the key, `anthropic-version` and `anthropic-beta` (the provider's configured version
    /// first, then the client's, for a passthrough body written against it, then ``defaultAPIVersion``; the
    /// client's betas), and last the provider's own ``Provider/headers``, which replace any of them.
    static func headers(for provider: ResolvedProvider, passthrough: PassthroughBody?, stream: Bool) -> HTTPHeaders {
        var headers = HTTPHeaders()
        headers.addJSONHeaders()
        if let key = provider.apiKey { headers.add(name: "x-api-key", value: key) }
        let version = provider.provider.apiVersion ?? passthrough?.headers["anthropic-version"] ?? Self.defaultAPIVersion
        headers.add(name: "anthropic-version", value: version)
        if let beta = passthrough?.headers["anthropic-beta"], !beta.isEmpty {
            headers.add(name: "anthropic-beta", value: beta)
        }
        if stream { headers.replaceOrAdd(name: "accept", value: "text/event-stream") }
        for (name, value) in provider.provider.headers.sorted(by: { $0.key < $1.key }) {
            headers.replaceOrAdd(name: name, value: value)
        }
        return headers
    }

    /// The client's own Messages body (``ChatRequest/passthrough``) with only what the chain must change: `model`,
    /// `stream`, messages the chain appended (a continuation's prefill) written after the client's, and the
    /// members in `dropping` left out. Every other member (`cache_control`, `thinking`, `metadata`, tool types and
    /// fields added later) goes as the client sent it, in its order, numbers exact.
    static func writePassthrough(
        _ passthrough: PassthroughBody, request: ChatRequest, model: String, stream: Bool, dropping: [String]
    ) throws(ProviderError) -> ByteBuffer {
        var buffer = ByteBufferAllocator().buffer(capacity: 1024)
        buffer.writeInteger(UInt8(ascii: "{"))
        var first = true
        func key(_ name: String) {
            if !first { buffer.writeInteger(UInt8(ascii: ",")) }
            first = false
            buffer.writeJSONString(name)
            buffer.writeInteger(UInt8(ascii: ":"))
        }
        if !passthrough.body.contains(key: "model") {
            key("model")
            buffer.writeJSONString(model)
        }
        do {
            for (name, value) in passthrough.body where !dropping.contains(name) {
                switch name {
                case "model":
                    key(name)
                    buffer.writeJSONString(model)
                case "stream":
                    continue
                case "messages" where request.messages.count > passthrough.messageCount:
                    key(name)
                    buffer.writeInteger(UInt8(ascii: "["))
                    var count = 0
                    for element in value.arrayValue ?? [] {
                        if count > 0 { buffer.writeInteger(UInt8(ascii: ",")) }
                        try buffer.writeJSONValue(element)
                        count += 1
                    }
                    let appended = try conversation(Array(request.messages.dropFirst(passthrough.messageCount))).turns
                    for turn in appended {
                        if count > 0 { buffer.writeInteger(UInt8(ascii: ",")) }
                        try buffer.writeJSONValue(turn.json)
                        count += 1
                    }
                    buffer.writeInteger(UInt8(ascii: "]"))
                default:
                    key(name)
                    try buffer.writeJSONValue(value)
                }
            }
        } catch let error as ProviderError {
            // An appended message the format cannot express: its own reason.
            throw error
        } catch {
            throw ProviderError(.invalidRequest, message: "the request holds a number JSON cannot carry (NaN or infinity)")
        }
        if stream {
            key("stream")
            buffer.writeRaw("true")
        }
        buffer.writeInteger(UInt8(ascii: "}"))
        return buffer
    }

    /// The request for `POST /v1/messages/count_tokens`: a passthrough body as the client sent it (model
    /// replaced), or the neutral request's conversation, system, tools and thinking.
    public func makeCountTokensRequest(_ request: ChatRequest, for provider: ResolvedProvider) throws(ProviderError) -> HTTPRequestParts {
        let passthrough = request.passthrough?.format == .anthropic ? request.passthrough : nil
        let headers = Self.headers(for: provider, passthrough: passthrough, stream: false)
        let url = "\(provider.baseURL)/v1/messages/count_tokens"
        if let passthrough {
            var counted = request
            counted.messages = Array(request.messages.prefix(passthrough.messageCount))
            let bytes = try Self.writePassthrough(passthrough, request: counted, model: provider.provider.model, stream: false, dropping: [])
            return HTTPRequestParts(method: .POST, url: url, headers: headers, body: bytes)
        }
        let conversation = try Self.conversation(request.messages)
        var system = conversation.system
        if let instruction = Self.jsonInstruction(for: request.responseFormat) { system.append(instruction) }
        var body = AnthropicRequestBody(
            request: request,
            model: provider.provider.model,
            system: system.isEmpty ? nil : system.joined(separator: "\n\n"),
            messages: conversation.turns.map(\.json),
            stream: false
        ).json
        for name in ["max_tokens", "temperature", "top_p", "stop_sequences", "metadata", "stream"] {
            body[name] = nil
        }
        return HTTPRequestParts(method: .POST, url: url, headers: headers, body: try WireJSON.write(body))
    }

    /// The count in a `count_tokens` answer: `{"input_tokens": 1234}`.
    public func decodeCountTokensResponse(_ body: ByteBuffer) throws(ProviderError) -> Int {
        let root: JSONValue
        do {
            root = try JSONParser.parse(body)
        } catch {
            throw ProviderError(.invalidResponse, message: "malformed count_tokens answer: \(error); body: \(WireJSON.snippet(body))")
        }
        guard case .int(let count)? = root.objectValue?["input_tokens"], count >= 0 else {
            throw ProviderError(.invalidResponse, message: "count_tokens answer without a valid 'input_tokens'; body: \(WireJSON.snippet(body))")
        }
        return count
    }

    public func decodeResponse(_ body: ByteBuffer, headers: HTTPHeaders, for provider: ResolvedProvider) throws(ProviderError) -> ChatResponse {
        let message = try AnthropicMessageWire.parse(body, what: "Anthropic message")
        if message.type == "error" || message.error != nil {
            throw Self.error(from: message.error, status: nil, headers: headers, bodyRequestID: message.requestID)
        }
        guard let blocks = message.content else {
            throw ProviderError(.invalidResponse, message: "malformed Anthropic message: missing key 'content'; body: \(WireJSON.snippet(body))")
        }
        var text = ""
        var toolCalls: [ToolCall] = []
        for (offset, block) in blocks.enumerated() {
            switch block.type {
            case "text":
                text += block.text ?? ""
            case "tool_use":
                guard let id = block.id, let name = block.name else {
                    throw ProviderError(.invalidResponse, message: "Anthropic tool_use block content[\(offset)] has no id or name")
                }
                toolCalls.append(ToolCall(id: id, name: name, arguments: (block.input ?? [:]).jsonString))
            default:
                // thinking, redacted_thinking, server tool blocks: nothing the neutral model carries.
                continue
            }
        }
        var response = ChatResponse(
            content: text,
            toolCalls: toolCalls,
            finishReason: message.stopReason.map(Self.finishReason),
            usage: message.usage?.usage(),
            id: message.id,
            provider: provider.kind.name,
            providerName: provider.provider.name,
            model: message.model ?? provider.provider.model,
            rawBody: body.getData(at: body.readerIndex, length: body.readableBytes)
        )
        response.wireFormat = .anthropic
        return response
    }

    public func classifyError(status: Int, headers: HTTPHeaders, body: ByteBuffer) -> ProviderError {
        if let envelope = try? WireJSON.decode(AnthropicErrorEnvelope.self, from: body, what: "error"), let error = envelope.error {
            return Self.error(from: error, status: status, headers: headers, bodyRequestID: envelope.requestID)
        }
        return ErrorClassifier.unstructuredError(status: status, headers: headers, body: body)
    }

    public func makeStreamDecoder(for provider: ResolvedProvider) -> any StreamDecoder {
        AnthropicStreamDecoder(provider: provider.kind.name, model: provider.provider.model)
    }

    /// For a passthrough of the client's Anthropic body, a decoder that relays every event (see
    /// ``AnthropicStreamDecoder/relaysEvents``).
    public func makeStreamDecoder(for provider: ResolvedProvider, request: ChatRequest) -> any StreamDecoder {
        var decoder = AnthropicStreamDecoder(provider: provider.kind.name, model: provider.provider.model)
        decoder.relaysEvents = request.passthrough?.format == .anthropic
        return decoder
    }

    // MARK: Mapping

    static func finishReason(_ raw: String) -> FinishReason {
        switch raw {
        case "end_turn", "stop_sequence": return .stop
        case "max_tokens": return .length
        case "tool_use": return .toolCalls
        case "refusal": return .contentFilter
        default: return .other(raw)
        }
    }

    /// The error an Anthropic error object stands for; `status` is `nil` for an error inside a 200 body or stream.
    static func error(from error: AnthropicErrorWire?, status: Int?, headers: HTTPHeaders, bodyRequestID: String? = nil) -> ProviderError {
        let type = error?.type
        let message = error?.message ?? "provider error"
        var transient: Bool?
        let kind: ProviderError.Kind
        switch type {
        case "invalid_request_error":
            if ErrorClassifier.mentionsContextLength(message) {
                kind = .contextLengthExceeded
            } else if Self.mentionsSpendLimit(message) {
                // "Your credit balance is too low", a workspace spend limit: waiting does not help, another
                // provider might.
                kind = .rateLimited
                transient = false
            } else {
                kind = .invalidRequest
            }
        case "authentication_error": kind = .authentication
        case "permission_error": kind = .permissionDenied
        case "not_found_error": kind = .notFound
        case "request_too_large": kind = .invalidRequest
        case "rate_limit_error":
            kind = .rateLimited
            if error?.details?["error_code"]?.stringValue == "enforced_spend_limit_reached" || Self.mentionsSpendLimit(message) {
                transient = false
            }
        case "billing_error":
            kind = .rateLimited
            transient = false
        case "api_error": kind = .serverError
        case "overloaded_error": kind = .overloaded
        case "timeout_error": kind = .timeout
        default:
            var byStatus = status.map(ErrorClassifier.kind(forStatus:)) ?? .serverError
            if byStatus == .invalidRequest && ErrorClassifier.mentionsContextLength(message) { byStatus = .contextLengthExceeded }
            kind = byStatus
        }
        return ProviderError(
            kind,
            status: status,
            message: message,
            retryAfter: ErrorClassifier.retryAfter(from: headers),
            isTransient: transient,
            code: type,
            requestID: headers.first(name: "request-id") ?? ErrorClassifier.requestID(from: headers) ?? bodyRequestID
        )
    }

    private static func mentionsSpendLimit(_ message: String) -> Bool {
        let lower = message.lowercased()
        return lower.contains("credit balance") || lower.contains("spend limit") || lower.contains("usage limit")
    }

    /// The instruction appended to the system prompt for JSON output, which the Messages API cannot enforce.
    static func jsonInstruction(for format: ResponseFormat?) -> String? {
        switch format {
        case nil, .text?:
            return nil
        case .jsonObject?:
            return "Respond with only a JSON object, with no other text before or after it and no Markdown code fence."
        case .jsonSchema(let name, let schema, _)?:
            return "Respond with only a JSON object that conforms to the JSON Schema \"\(name)\" below, with no other text "
                + "before or after it and no Markdown code fence.\n\(schema.jsonString)"
        }
    }

    /// The system prompt and the alternating user/assistant turns of a conversation.
    static func conversation(_ messages: [Message]) throws(ProviderError) -> (system: [String], turns: [AnthropicTurn]) {
        var system: [String] = []
        var turns: [AnthropicTurn] = []
        func append(_ role: String, _ blocks: [JSONValue]) {
            if let last = turns.indices.last, turns[last].role == role {
                turns[last].blocks += blocks
            } else {
                turns.append(AnthropicTurn(role: role, blocks: blocks))
            }
        }
        for (offset, message) in messages.enumerated() {
            switch message.role {
            case .system, Role(rawValue: "developer"):
                let text = message.content.text
                if !text.isEmpty { system.append(text) }
            case .user:
                append("user", try Self.blocks(for: message.content, keepEmpty: true))
            case .assistant:
                var blocks = try Self.blocks(for: message.content, keepEmpty: message.toolCalls.isEmpty)
                for call in message.toolCalls {
                    blocks.append(["type": "tool_use", "id": .string(call.id), "name": .string(call.name), "input": Self.argumentsObject(call.arguments)])
                }
                append("assistant", blocks)
            case .tool:
                guard let callID = message.toolCallID else {
                    throw ProviderError(.invalidRequest, message: "messages[\(offset)]: a tool message needs the toolCallID of the call it answers")
                }
                let content: JSONValue
                if case .parts(let parts) = message.content, parts.contains(where: { if case .image = $0 { true } else { false } }) {
                    content = .array(try Self.blocks(for: message.content, keepEmpty: false))
                } else {
                    content = .string(message.content.text)
                }
                var block: JSONObject = ["type": "tool_result", "tool_use_id": .string(callID), "content": content]
                if message.isError { block["is_error"] = true }
                append("user", [.object(block)])
            default:
                throw ProviderError(.invalidRequest, message: "messages[\(offset)]: Anthropic has no role '\(message.role)'")
            }
        }
        return (system, turns)
    }

    /// Text and image blocks; empty text blocks (which the API rejects) are dropped unless nothing else is left
    /// and `keepEmpty` is set.
    private static func blocks(for content: Content, keepEmpty: Bool) throws(ProviderError) -> [JSONValue] {
        var blocks: [JSONValue] = []
        for part in content.parts {
            switch part {
            case .text(let text):
                if !text.isEmpty { blocks.append(["type": "text", "text": .string(text)]) }
            case .image(.base64(let data, let mediaType)):
                blocks.append(Self.imageBlock(mediaType: mediaType, data: data))
            case .image(.url(let url, _)):
                if DataURLPayload.isDataURL(url) {
                    guard let payload = DataURLPayload(url) else {
                        throw ProviderError(.invalidRequest, message: "malformed data: URL for an image: \(url.prefix(60))")
                    }
                    blocks.append(Self.imageBlock(mediaType: payload.mediaType, data: payload.base64))
                } else {
                    blocks.append(["type": "image", "source": ["type": "url", "url": .string(url)]])
                }
            }
        }
        if blocks.isEmpty && keepEmpty { blocks.append(["type": "text", "text": ""]) }
        return blocks
    }

    private static func imageBlock(mediaType: String, data: String) -> JSONValue {
        ["type": "image", "source": ["type": "base64", "media_type": .string(mediaType), "data": .string(data)]]
    }

    /// Tool arguments as the object the API wants: `{}` when they are empty, not JSON or not an object.
    static func argumentsObject(_ arguments: String) -> JSONValue {
        guard let parsed = try? JSONValue(parsing: arguments), case .object = parsed else { return [:] }
        return parsed
    }
}

/// One turn of an Anthropic conversation, before rendering.
struct AnthropicTurn {
    var role: String
    var blocks: [JSONValue]

    /// The turn as sent: plain string content for a single text block, blocks otherwise.
    var json: JSONValue {
        if blocks.count == 1, blocks[0]["type"] == "text", let text = blocks[0]["text"]?.stringValue {
            return ["role": .string(role), "content": .string(text)]
        }
        return ["role": .string(role), "content": .array(blocks)]
    }
}

/// Decodes Anthropic's named events (`message_start` ... `message_stop`) into chunks.
///
/// Tool-call indices count the message's `tool_use` blocks (0 for the first), not Anthropic's block indices, which
/// also count text and thinking blocks. A `tool_use` block that streams no arguments gets `{}`. The usage in
/// `message_delta` is cumulative: the chunk carrying it reports the whole answer's usage.
public struct AnthropicStreamDecoder: StreamDecoder {
    private let provider: String
    private var model: String
    private var id: String?
    private var inputTokens = 0
    private var cacheCreationTokens = 0
    private var cacheReadTokens: Int?
    /// Tool index of each `tool_use` block, by Anthropic block index.
    private var toolIndexByBlock: [Int: Int] = [:]
    /// The `tool_use` blocks that received argument fragments.
    private var blocksWithArguments: Set<Int> = []
    public private(set) var isComplete = false
    /// Whether every event is handed on with its own text as ``ChatChunk/rawData`` (format
    /// ``WireFormat/anthropic``), those the neutral model has nothing for (thinking, signatures, pings, block
    /// stops, `message_start`, `message_stop`) as chunks without content: so that a gateway can relay an
    /// Anthropic stream to an Anthropic client exactly as it came. Off by default.
    public var relaysEvents = false

    /// Creates a decoder for a stream from `provider` asked for `model`.
    public init(provider: String, model: String) {
        self.provider = provider
        self.model = model
    }

    public mutating func decode(_ event: ServerSentEvent) throws(ProviderError) -> ChatChunk? {
        let decoded = try decodeEvent(event)
        guard relaysEvents else { return decoded }
        var relayed = decoded ?? chunk()
        relayed.rawData = Self.frame(event)
        relayed.wireFormat = .anthropic
        relayed.isKeepAlive = decoded == nil && (event.event ?? "") == "ping"
        return relayed
    }

    /// An event as it is written on the wire: `event:` and `data:` lines and the blank line.
    static func frame(_ event: ServerSentEvent) -> String {
        var text = ""
        text.reserveCapacity(event.data.utf8.count + 40)
        if let name = event.event {
            text += "event: "
            text += name
            text += "\n"
        }
        for line in event.data.split(separator: "\n", omittingEmptySubsequences: false) {
            text += "data: "
            text += line
            text += "\n"
        }
        text += "\n"
        return text
    }

    private mutating func decodeEvent(_ event: ServerSentEvent) throws(ProviderError) -> ChatChunk? {
        if event.data.allSatisfy(\.isWhitespace) {
            // Every Anthropic event carries JSON; an empty one can only be recognised by its name.
            if event.event == "message_stop" { isComplete = true }
            return nil
        }
        let wire = try AnthropicStreamEventWire.parse(event.data, what: "Anthropic stream event")
        let name = event.event ?? wire.type ?? ""
        switch name {
        case "message_start":
            if let message = wire.message {
                id = message.id ?? id
                if let answered = message.model, !answered.isEmpty { model = answered }
                if let usage = message.usage { absorbInput(usage) }
            }
            return nil
        case "content_block_start":
            guard let index = wire.index, let block = wire.contentBlock else {
                throw ProviderError(.invalidResponse, message: "Anthropic content_block_start without index or content_block: \(event.data.prefix(200))")
            }
            switch block.type {
            case "text":
                return chunk(content: block.text ?? "")
            case "tool_use":
                let toolIndex = toolIndexByBlock.count
                toolIndexByBlock[index] = toolIndex
                var arguments = ""
                if let input = block.input, let members = input.objectValue, !members.isEmpty {
                    arguments = input.jsonString
                    blocksWithArguments.insert(index)
                }
                return chunk(toolCall: ToolCallDelta(index: toolIndex, id: block.id, name: block.name, arguments: arguments))
            default:
                return nil
            }
        case "content_block_delta":
            guard let delta = wire.delta else {
                throw ProviderError(.invalidResponse, message: "Anthropic content_block_delta without delta: \(event.data.prefix(200))")
            }
            switch delta.type {
            case "text_delta":
                return chunk(content: delta.text ?? "")
            case "input_json_delta":
                guard let index = wire.index else {
                    throw ProviderError(.invalidResponse, message: "Anthropic input_json_delta without index: \(event.data.prefix(200))")
                }
                // Deltas of blocks that are not tool_use (server tools) are not the caller's.
                guard let toolIndex = toolIndexByBlock[index] else { return nil }
                let fragment = delta.partialJSON ?? ""
                if fragment.isEmpty { return nil }
                blocksWithArguments.insert(index)
                return chunk(toolCall: ToolCallDelta(index: toolIndex, arguments: fragment))
            default:
                // thinking_delta, signature_delta, citations_delta.
                return nil
            }
        case "content_block_stop":
            if let index = wire.index, let toolIndex = toolIndexByBlock[index], !blocksWithArguments.contains(index) {
                blocksWithArguments.insert(index)
                return chunk(toolCall: ToolCallDelta(index: toolIndex, arguments: "{}"))
            }
            return nil
        case "message_delta":
            var result = chunk()
            result.finishReason = wire.delta?.stopReason.map(AnthropicAdapter.finishReason)
            if let usage = wire.usage {
                absorbInput(usage)
                result.usage = Usage(
                    promptTokens: max(0, inputTokens).saturatingAdd(max(0, cacheCreationTokens)).saturatingAdd(max(0, cacheReadTokens ?? 0)),
                    completionTokens: usage.outputTokens ?? 0,
                    cachedTokens: cacheReadTokens
                )
            }
            return result.finishReason == nil && result.usage == nil ? nil : result
        case "message_stop":
            isComplete = true
            return nil
        case "error":
            throw AnthropicAdapter.error(from: wire.error, status: nil, headers: [:], bodyRequestID: wire.requestID)
        default:
            // ping, and events added later.
            return nil
        }
    }

    /// The prompt's tokens `message_start` reported (the answer's come in `message_delta`).
    public var usageSoFar: Usage? {
        guard inputTokens > 0 || cacheCreationTokens > 0 || cacheReadTokens != nil else { return nil }
        return Usage(
            promptTokens: max(0, inputTokens).saturatingAdd(max(0, cacheCreationTokens)).saturatingAdd(max(0, cacheReadTokens ?? 0)),
            completionTokens: 0,
            cachedTokens: cacheReadTokens
        )
    }

    /// Takes the input counts of `message_start`, or the cumulative ones a `message_delta` may repeat.
    private mutating func absorbInput(_ usage: AnthropicUsageWire) {
        if let value = usage.inputTokens { inputTokens = value }
        if let value = usage.cacheCreationInputTokens { cacheCreationTokens = value }
        if let value = usage.cacheReadInputTokens { cacheReadTokens = value }
    }

    private func chunk() -> ChatChunk {
        ChatChunk(id: id, provider: provider, model: model)
    }

    private func chunk(content: String) -> ChatChunk? {
        content.isEmpty ? nil : ChatChunk(content: content, id: id, provider: provider, model: model)
    }

    private func chunk(toolCall: ToolCallDelta) -> ChatChunk {
        ChatChunk(toolCallDeltas: [toolCall], id: id, provider: provider, model: model)
    }
}

// MARK: - Request body

struct AnthropicRequestBody {
    let request: ChatRequest
    let model: String
    let system: String?
    let messages: [JSONValue]
    let stream: Bool

    /// The body, members in the order the API documents them; free-form values (tool schemas) keep theirs.
    var json: JSONObject {
        var body: JSONObject = ["model": .string(model)]
        let thinking = request.reasoningEffort?.thinkingBudget
        var maxTokens = request.maxTokens ?? AnthropicAdapter.defaultMaxTokens
        if let thinking, maxTokens <= thinking {
            // The budget must stay below max_tokens: the answer gets the client's limit on top of it.
            maxTokens = thinking.saturatingAdd(request.maxTokens ?? AnthropicAdapter.defaultMaxTokens)
        }
        body["max_tokens"] = .int(maxTokens)
        if let system { body["system"] = .string(system) }
        body["messages"] = .array(messages)
        // Extended thinking allows no temperature or top_p other than the defaults.
        if thinking == nil {
            if let temperature = request.temperature { body["temperature"] = .double(temperature) }
            if let topP = request.topP { body["top_p"] = .double(topP) }
        }
        if let thinking { body["thinking"] = ["type": "enabled", "budget_tokens": .int(thinking)] }
        if !request.stop.isEmpty { body["stop_sequences"] = .array(request.stop.map(JSONValue.string)) }
        if !request.tools.isEmpty {
            body["tools"] = .array(request.tools.map { tool in
                var value: JSONObject = ["name": .string(tool.name)]
                if let description = tool.description { value["description"] = .string(description) }
                value["input_schema"] = tool.parameters
                return .object(value)
            })
            if let choice = toolChoice { body["tool_choice"] = choice }
        }
        if let user = request.user { body["metadata"] = ["user_id": .string(user)] }
        if stream { body["stream"] = true }
        for (key, value) in request.extraBody[.anthropic] ?? [:] { body[key] = value }
        return body
    }

    /// The request's parameters the Messages API has no counterpart for, by their OpenAI names.
    static func droppedParameters(of request: ChatRequest) -> [String] {
        var dropped: [String] = []
        if request.seed != nil { dropped.append("seed") }
        if request.frequencyPenalty != nil { dropped.append("frequency_penalty") }
        if request.presencePenalty != nil { dropped.append("presence_penalty") }
        if request.logprobs != nil { dropped.append("logprobs") }
        if request.topLogprobs != nil { dropped.append("top_logprobs") }
        if request.reasoningEffort?.thinkingBudget != nil {
            if request.temperature != nil { dropped.append("temperature") }
            if request.topP != nil { dropped.append("top_p") }
        }
        if let passthrough = request.passthrough, passthrough.format != .anthropic {
            dropped += passthrough.droppedAcrossFormats
        }
        return dropped
    }

    /// `tool_choice`, only sent with tools (the API rejects it without).
    private var toolChoice: JSONValue? {
        var choice: JSONObject = ["type": "auto"]
        if let requested = request.toolChoice {
            switch requested {
            case .auto: break
            case .none: return ["type": "none"]
            case .required: choice = ["type": "any"]
            case .tool(let name): choice = ["type": "tool", "name": .string(name)]
            }
        } else if request.parallelToolCalls != false {
            return nil
        }
        if request.parallelToolCalls == false { choice["disable_parallel_tool_use"] = true }
        return .object(choice)
    }
}

// MARK: - Wire types

struct AnthropicErrorWire: Decodable {
    let type: String?
    let message: String?
    let details: JSONValue?
}

struct AnthropicErrorEnvelope: Decodable {
    let error: AnthropicErrorWire?
    let requestID: String?
    enum CodingKeys: String, CodingKey {
        case error
        case requestID = "request_id"
    }
}

struct AnthropicUsageWire: Decodable {
    let inputTokens: Int?
    let outputTokens: Int?
    let cacheCreationInputTokens: Int?
    let cacheReadInputTokens: Int?

    enum CodingKeys: String, CodingKey {
        case inputTokens = "input_tokens"
        case outputTokens = "output_tokens"
        case cacheCreationInputTokens = "cache_creation_input_tokens"
        case cacheReadInputTokens = "cache_read_input_tokens"
    }

    /// Prompt tokens including cache reads and writes, as OpenAI counts them.
    func usage() -> Usage {
        Usage(
            promptTokens: max(0, inputTokens ?? 0).saturatingAdd(max(0, cacheCreationInputTokens ?? 0)).saturatingAdd(max(0, cacheReadInputTokens ?? 0)),
            completionTokens: outputTokens ?? 0,
            cachedTokens: cacheReadInputTokens
        )
    }
}

struct AnthropicContentBlockWire: Decodable {
    let type: String
    let text: String?
    let id: String?
    let name: String?
    let input: JSONValue?
}

struct AnthropicMessageWire: Decodable {
    let type: String?
    let id: String?
    let model: String?
    let content: [AnthropicContentBlockWire]?
    let stopReason: String?
    let usage: AnthropicUsageWire?
    let error: AnthropicErrorWire?
    let requestID: String?

    enum CodingKeys: String, CodingKey {
        case type, id, model, content, usage, error
        case stopReason = "stop_reason"
        case requestID = "request_id"
    }
}

struct AnthropicStreamEventWire: Decodable {
    struct Delta: Decodable {
        let type: String?
        let text: String?
        let partialJSON: String?
        let stopReason: String?
        enum CodingKeys: String, CodingKey {
            case type, text
            case partialJSON = "partial_json"
            case stopReason = "stop_reason"
        }
    }
    let type: String?
    let message: AnthropicMessageWire?
    let index: Int?
    let contentBlock: AnthropicContentBlockWire?
    let delta: Delta?
    let usage: AnthropicUsageWire?
    let error: AnthropicErrorWire?
    let requestID: String?

    enum CodingKeys: String, CodingKey {
        case type, message, index, delta, usage, error
        case contentBlock = "content_block"
        case requestID = "request_id"
    }
}

// MARK: - Reading answers from the package's JSON tree

extension AnthropicMessageWire {
    /// A message read through ``JSONParser`` (a `tool_use` block's `input` keeps its member order and its numbers
    /// their exact value, and it is faster than `JSONDecoder`); anything it does not expect goes to
    /// `JSONDecoder`, which words the error.
    static func parse(_ body: ByteBuffer, what: String) throws(ProviderError) -> AnthropicMessageWire {
        if let value = try? JSONParser.parse(body), let wire = AnthropicMessageWire(json: value) { return wire }
        return try WireJSON.decode(AnthropicMessageWire.self, from: body, what: what)
    }

    /// `nil` when a member has an unexpected type.
    init?(json: JSONValue) {
        guard case .object(let members) = json,
            let type = JSONField.string(members["type"]), let id = JSONField.string(members["id"]),
            let model = JSONField.string(members["model"]), let stopReason = JSONField.string(members["stop_reason"]),
            let usage = JSONField.optional(members["usage"], AnthropicUsageWire.init(json:)),
            let error = JSONField.optional(members["error"], AnthropicErrorWire.init(json:)),
            let requestID = JSONField.string(members["request_id"])
        else { return nil }
        var content: [AnthropicContentBlockWire]?
        switch members["content"] {
        case nil, .null?: break
        case .array(let elements)?:
            var blocks: [AnthropicContentBlockWire] = []
            blocks.reserveCapacity(elements.count)
            for element in elements {
                guard let block = AnthropicContentBlockWire(json: element) else { return nil }
                blocks.append(block)
            }
            content = blocks
        default: return nil
        }
        self.init(
            type: type.value, id: id.value, model: model.value, content: content, stopReason: stopReason.value, usage: usage.value,
            error: error.value, requestID: requestID.value)
    }
}

extension AnthropicContentBlockWire {
    init?(json: JSONValue) {
        guard case .object(let members) = json, case .string(let type)? = members["type"],
            let text = JSONField.string(members["text"]), let id = JSONField.string(members["id"]),
            let name = JSONField.string(members["name"])
        else { return nil }
        let input = members["input"].flatMap { $0 == .null ? nil : $0 }
        self.init(type: type, text: text.value, id: id.value, name: name.value, input: input)
    }
}

extension AnthropicUsageWire {
    init?(json: JSONValue) {
        guard case .object(let members) = json, let input = JSONField.int(members["input_tokens"]),
            let output = JSONField.int(members["output_tokens"]),
            let creation = JSONField.int(members["cache_creation_input_tokens"]),
            let read = JSONField.int(members["cache_read_input_tokens"])
        else { return nil }
        self.init(inputTokens: input.value, outputTokens: output.value, cacheCreationInputTokens: creation.value, cacheReadInputTokens: read.value)
    }
}

extension AnthropicErrorWire {
    init?(json: JSONValue) {
        guard case .object(let members) = json, let type = JSONField.string(members["type"]),
            let message = JSONField.string(members["message"])
        else { return nil }
        self.init(type: type.value, message: message.value, details: members["details"].flatMap { $0 == .null ? nil : $0 })
    }
}

extension AnthropicStreamEventWire {
    /// An event read through ``JSONParser``, as ``AnthropicMessageWire/parse(_:what:)`` reads a message.
    static func parse(_ text: String, what: String) throws(ProviderError) -> AnthropicStreamEventWire {
        if let value = try? JSONValue(parsing: text), let wire = AnthropicStreamEventWire(json: value) { return wire }
        return try WireJSON.decode(AnthropicStreamEventWire.self, from: text, what: what)
    }

    init?(json: JSONValue) {
        guard case .object(let members) = json, let type = JSONField.string(members["type"]),
            let message = JSONField.optional(members["message"], AnthropicMessageWire.init(json:)),
            let index = JSONField.int(members["index"]),
            let block = JSONField.optional(members["content_block"], AnthropicContentBlockWire.init(json:)),
            let delta = JSONField.optional(members["delta"], Delta.init(json:)),
            let usage = JSONField.optional(members["usage"], AnthropicUsageWire.init(json:)),
            let error = JSONField.optional(members["error"], AnthropicErrorWire.init(json:)),
            let requestID = JSONField.string(members["request_id"])
        else { return nil }
        self.init(
            type: type.value, message: message.value, index: index.value, contentBlock: block.value, delta: delta.value,
            usage: usage.value, error: error.value, requestID: requestID.value)
    }
}

extension AnthropicStreamEventWire.Delta {
    init?(json: JSONValue) {
        guard case .object(let members) = json, let type = JSONField.string(members["type"]),
            let text = JSONField.string(members["text"]), let partial = JSONField.string(members["partial_json"]),
            let stopReason = JSONField.string(members["stop_reason"])
        else { return nil }
        self.init(type: type.value, text: text.value, partialJSON: partial.value, stopReason: stopReason.value)
    }
}

// MARK: - data: URLs

/// The media type and base64 payload of a `data:` URL (RFC 2397), for APIs that take inline image bytes.
struct DataURLPayload: Hashable {
    var mediaType: String
    var base64: String

    static func isDataURL(_ url: String) -> Bool {
        url.prefix(5).lowercased() == "data:"
    }

    /// Parses `data:[<media type>][;base64],<data>`; percent-encoded (non-base64) data is re-encoded as base64.
    init?(_ url: String) {
        guard Self.isDataURL(url), let comma = url.firstIndex(of: ",") else { return nil }
        let header = url[url.index(url.startIndex, offsetBy: 5)..<comma]
        let payload = url[url.index(after: comma)...]
        let parameters = header.split(separator: ";", omittingEmptySubsequences: false).map {
            $0.trimmingCharacters(in: .whitespaces)
        }
        let isBase64 = parameters.dropFirst().contains { $0.lowercased() == "base64" }
        let type = parameters.first ?? ""
        mediaType = type.isEmpty ? "text/plain" : type
        if isBase64 {
            let text = payload.contains("%") ? (String(payload).removingPercentEncoding ?? String(payload)) : String(payload)
            let compact = text.filter { !$0.isWhitespace }
            guard !compact.isEmpty, Data(base64Encoded: compact) != nil else { return nil }
            base64 = compact
        } else {
            guard let bytes = Self.percentDecoded(payload.utf8) else { return nil }
            base64 = Data(bytes).base64EncodedString()
        }
    }

    private static func percentDecoded(_ input: some Collection<UInt8>) -> [UInt8]? {
        var output: [UInt8] = []
        var iterator = input.makeIterator()
        func hex(_ byte: UInt8) -> UInt8? {
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
            default: return nil
            }
        }
        while let byte = iterator.next() {
            if byte == UInt8(ascii: "%") {
                guard let high = iterator.next().flatMap(hex), let low = iterator.next().flatMap(hex) else { return nil }
                output.append(high << 4 | low)
            } else {
                output.append(byte)
            }
        }
        return output
    }
}
