import Foundation
import NIOFoundationCompat
import NIOCore
import NIOHTTP1

/// OpenAI Chat Completions, spoken by OpenAI, Azure OpenAI and OpenAI-compatible servers.
///
/// Sends `POST {baseURL}/chat/completions` with `Authorization: Bearer KEY` (Azure:
/// `{baseURL}/openai/deployments/{model}/chat/completions?api-version=...` with `api-key: KEY`).
public struct OpenAIAdapter: ProviderAdapter {
    /// Azure's default `api-version`.
    public static let defaultAzureAPIVersion = "2024-10-21"

    /// Whether this adapter speaks Azure's URL and header scheme.
    public var azure: Bool

    /// Creates the adapter.
    public init(azure: Bool = false) {
        self.azure = azure
    }

    public func makeRequest(_ request: ChatRequest, for provider: ResolvedProvider, stream: Bool) throws(ProviderError) -> HTTPRequestParts {
        var headers = HTTPHeaders()
        headers.addJSONHeaders()
        let url: String
        if azure {
            let version = provider.provider.apiVersion ?? Self.defaultAzureAPIVersion
            let deployment = provider.provider.model.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed) ?? provider.provider.model
            url = "\(provider.baseURL)/openai/deployments/\(deployment)/chat/completions?api-version=\(version)"
            if let key = provider.apiKey { headers.add(name: "api-key", value: key) }
        } else {
            url = "\(provider.baseURL)/chat/completions"
            if let key = provider.apiKey { headers.add(name: "authorization", value: "Bearer \(key)") }
        }
        if stream { headers.replaceOrAdd(name: "accept", value: "text/event-stream") }
        for (name, value) in provider.provider.headers.sorted(by: { $0.key < $1.key }) {
            headers.replaceOrAdd(name: name, value: value)
        }
        let body = OpenAIRequestBody(
            request: request,
            model: azure ? nil : provider.provider.model,
            maxTokensField: provider.kind.maxTokensField,
            stream: stream
        )
        var bytes: ByteBuffer
        do {
            if let passthrough = request.passthrough, passthrough.format.speaksOpenAIChat {
                bytes = try body.writePassthrough(passthrough, dropping: provider.provider.dropParameters)
            } else {
                bytes = try body.writeJSON()
            }
        } catch {
            // A NaN or an infinity: JSONEncoder refuses it too, and says where.
            bytes = try WireJSON.encode(body)
        }
        let extra = request.extraBody[azure ? .azureOpenAI : .openAI] ?? request.extraBody[.openAI]
        if extra != nil || (request.passthrough == nil && !provider.provider.dropParameters.isEmpty) {
            bytes = WireJSON.merging(extra ?? [:], into: bytes, dropping: provider.provider.dropParameters)
        }
        if request.continuesFinalMessage {
            bytes = WireJSON.continuingFinalMessage(bytes, prefill: provider.assistantPrefill)
        }
        return HTTPRequestParts(method: .POST, url: url, headers: headers, body: bytes)
    }

    public func droppedParameters(in request: ChatRequest, for provider: ResolvedProvider) -> [String] {
        var dropped: [String] = []
        if let passthrough = request.passthrough {
            if passthrough.format.speaksOpenAIChat {
                dropped = provider.provider.dropParameters.filter { passthrough.body.contains(key: $0) }
            } else {
                dropped = passthrough.droppedAcrossFormats
            }
        } else if !provider.provider.dropParameters.isEmpty {
            dropped = provider.provider.dropParameters.filter { OpenAIRequestBody.writtenKeys(of: request).contains($0) }
        }
        if request.messages.contains(where: \.isError) { dropped.append("tool_result.is_error") }
        return dropped
    }

    public func decodeResponse(_ body: ByteBuffer, headers: HTTPHeaders, for provider: ResolvedProvider) throws(ProviderError) -> ChatResponse {
        // The fast reader takes the usual body; JSONDecoder decides anything else, and words the errors.
        let completion: OpenAICompletion
        if let fast = OpenAICompletion(fastParsing: body) {
            completion = fast
        } else {
            completion = try WireJSON.decode(OpenAICompletion.self, from: body, what: "chat completion")
        }
        if let error = completion.error {
            throw Self.error(from: error, status: nil, headers: headers)
        }
        guard let choices = completion.choices else {
            throw ProviderError(.invalidResponse, message: "malformed chat completion: missing key 'choices'; body: \(WireJSON.snippet(body))")
        }
        guard let choice = choices.first(where: { ($0.index ?? 0) == 0 }) ?? choices.first else {
            throw ProviderError(.invalidResponse, message: "chat completion has no choices")
        }
        guard let message = choice.message else {
            throw ProviderError(.invalidResponse, message: "chat completion choice has no message")
        }
        var toolCalls: [ToolCall] = []
        for (offset, call) in (message.toolCalls ?? []).enumerated() {
            guard let function = call.function, let name = function.name else {
                throw ProviderError(.invalidResponse, message: "tool call \(offset) has no function name")
            }
            toolCalls.append(ToolCall(id: call.id ?? "call_\(offset)", name: name, arguments: function.arguments ?? "{}"))
        }
        let finish = choice.finishReason.map(Self.finishReason)
        var response = ChatResponse(
            content: message.content?.text ?? message.refusal ?? "",
            toolCalls: toolCalls,
            finishReason: finish,
            usage: completion.usage?.usage,
            id: completion.id,
            provider: provider.kind.name,
            providerName: provider.provider.name,
            model: completion.model ?? provider.provider.model,
            rawBody: body.getData(at: body.readerIndex, length: body.readableBytes)
        )
        response.wireFormat = azure ? .azureOpenAI : .openAI
        return response
    }

    public func classifyError(status: Int, headers: HTTPHeaders, body: ByteBuffer) -> ProviderError {
        if let envelope = try? WireJSON.decode(OpenAIErrorEnvelope.self, from: body, what: "error"), let error = envelope.error {
            return Self.error(from: error, status: status, headers: headers)
        }
        return ErrorClassifier.unstructuredError(status: status, headers: headers, body: body)
    }

    public func makeStreamDecoder(for provider: ResolvedProvider) -> any StreamDecoder {
        OpenAIStreamDecoder(provider: provider.kind.name, model: provider.provider.model)
    }

    static func finishReason(_ raw: String) -> FinishReason {
        switch raw {
        case "stop": return .stop
        case "length": return .length
        case "tool_calls", "function_call": return .toolCalls
        case "content_filter": return .contentFilter
        default: return .other(raw)
        }
    }

    static func error(from error: OpenAIErrorBody, status: Int?, headers: HTTPHeaders) -> ProviderError {
        let code = error.code?.text
        let type = error.type
        let message = error.message ?? "provider error"
        var kind = status.map(ErrorClassifier.kind(forStatus:)) ?? .serverError
        var transient: Bool?
        let markers = [code, type].compactMap { $0 }
        if markers.contains("context_length_exceeded") || (kind == .invalidRequest && ErrorClassifier.mentionsContextLength(message)) {
            kind = .contextLengthExceeded
        } else if markers.contains(where: { $0 == "content_filter" || $0 == "content_policy_violation" })
            || (kind == .invalidRequest && ErrorClassifier.mentionsContentFilter(message))
        {
            kind = .contentFiltered
        } else if markers.contains("insufficient_quota") {
            kind = .rateLimited
            transient = false
        } else if markers.contains("rate_limit_exceeded") || type == "requests" || type == "tokens" {
            kind = .rateLimited
            if message.lowercased().contains("request too large") { transient = false }
        } else if status == nil {
            // An error inside a 200 stream or body: classify by its type.
            switch type {
            case "invalid_request_error": kind = .invalidRequest
            case "authentication_error", "invalid_api_key": kind = .authentication
            case "server_error", "api_error": kind = .serverError
            case "overloaded_error", "engine_overloaded": kind = .overloaded
            default: kind = .serverError
            }
        }
        if markers.contains("invalid_api_key") { kind = .authentication }
        return ProviderError(
            kind,
            status: status,
            message: message,
            retryAfter: ErrorClassifier.retryAfter(from: headers),
            isTransient: transient,
            code: code ?? type,
            requestID: ErrorClassifier.requestID(from: headers)
        )
    }
}

/// Decodes OpenAI `data:` chunks up to `[DONE]`.
public struct OpenAIStreamDecoder: StreamDecoder {
    private let provider: String
    private var model: String
    public private(set) var isComplete = false
    private var sawFinishReason = false

    /// A chunk carried the answer's `finish_reason`, with or without `[DONE]` after it (some servers omit it).
    ///
    /// `[DONE]` alone is not an end: OpenAI and the compatible servers send a `finish_reason` with every answer,
    /// so a `[DONE]` before one follows a cut (an upstream that crashed behind a proxy which then closed the
    /// stream its own way), and the text so far is not the answer.
    public var endsCleanly: Bool { sawFinishReason }

    /// Creates a decoder for a stream from `provider` asked for `model`.
    public init(provider: String, model: String) {
        self.provider = provider
        self.model = model
    }

    public mutating func decode(_ event: ServerSentEvent) throws(ProviderError) -> ChatChunk? {
        let data = event.data
        if data == "[DONE]" {
            isComplete = true
            return nil
        }
        if data.isEmpty { return nil }
        // As for a whole completion: the fast reader first, JSONDecoder for anything it leaves.
        let chunk: OpenAIStreamChunk
        if let fast = OpenAIStreamChunk(fastParsing: data) {
            chunk = fast
        } else {
            chunk = try WireJSON.decode(OpenAIStreamChunk.self, from: data, what: "stream chunk")
        }
        if let error = chunk.error {
            throw OpenAIAdapter.error(from: error, status: nil, headers: [:])
        }
        if let answered = chunk.model, !answered.isEmpty { model = answered }
        var result = ChatChunk(id: chunk.id, provider: provider, model: model)
        result.rawData = data
        result.wireFormat = .openAI
        if let choice = chunk.choices?.first(where: { ($0.index ?? 0) == 0 }) {
            if let delta = choice.delta {
                result.content = delta.content ?? ""
                if let calls = delta.toolCalls {
                    result.toolCallDeltas = calls.enumerated().map { offset, call in
                        ToolCallDelta(
                            index: call.index ?? offset,
                            id: call.id,
                            name: call.function?.name,
                            arguments: call.function?.arguments ?? ""
                        )
                    }
                }
            }
            result.finishReason = choice.finishReason.map(OpenAIAdapter.finishReason)
            if result.finishReason != nil { sawFinishReason = true }
        }
        result.usage = chunk.usage?.usage
        if !result.hasContent && result.finishReason == nil && result.usage == nil { return nil }
        return result
    }
}

// MARK: - Wire types

struct OpenAIRequestBody: Encodable {
    let request: ChatRequest
    let model: String?
    let maxTokensField: ProviderKind.MaxTokensField
    let stream: Bool

    enum Keys: String, CodingKey {
        case model, messages, temperature, top_p, max_tokens, max_completion_tokens, stop, tools, tool_choice
        case parallel_tool_calls, response_format, seed, user, stream, stream_options
        case reasoning_effort, frequency_penalty, presence_penalty, logprobs, top_logprobs
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: Keys.self)
        try container.encodeIfPresent(model, forKey: .model)
        try container.encode(request.messages.map(OpenAIMessage.init), forKey: .messages)
        try container.encodeIfPresent(request.temperature, forKey: .temperature)
        try container.encodeIfPresent(request.topP, forKey: .top_p)
        if let maxTokens = request.maxTokens {
            try container.encode(maxTokens, forKey: maxTokensField == .maxCompletionTokens ? .max_completion_tokens : .max_tokens)
        }
        if !request.stop.isEmpty { try container.encode(request.stop, forKey: .stop) }
        if !request.tools.isEmpty {
            try container.encode(request.tools.map(OpenAITool.init), forKey: .tools)
        }
        if let choice = request.toolChoice {
            switch choice {
            case .auto: try container.encode("auto", forKey: .tool_choice)
            case .none: try container.encode("none", forKey: .tool_choice)
            case .required: try container.encode("required", forKey: .tool_choice)
            case .tool(let name):
                let value: JSONValue = ["type": "function", "function": ["name": .string(name)]]
                try container.encode(value, forKey: .tool_choice)
            }
        }
        try container.encodeIfPresent(request.parallelToolCalls, forKey: .parallel_tool_calls)
        if let format = request.responseFormat {
            let value: JSONValue
            switch format {
            case .text: value = ["type": "text"]
            case .jsonObject: value = ["type": "json_object"]
            case .jsonSchema(let name, let schema, let strict):
                var inner: JSONObject = ["name": .string(name), "schema": schema]
                if let strict { inner["strict"] = .bool(strict) }
                value = ["type": "json_schema", "json_schema": .object(inner)]
            }
            try container.encode(value, forKey: .response_format)
        }
        try container.encodeIfPresent(request.seed, forKey: .seed)
        try container.encodeIfPresent(request.user, forKey: .user)
        try container.encodeIfPresent(request.reasoningEffort?.rawValue, forKey: .reasoning_effort)
        try container.encodeIfPresent(request.frequencyPenalty, forKey: .frequency_penalty)
        try container.encodeIfPresent(request.presencePenalty, forKey: .presence_penalty)
        try container.encodeIfPresent(request.logprobs, forKey: .logprobs)
        try container.encodeIfPresent(request.topLogprobs, forKey: .top_logprobs)
        if stream {
            try container.encode(true, forKey: .stream)
            try container.encode(["include_usage": true], forKey: .stream_options)
        }
    }
}

struct OpenAIMessage: Encodable {
    let message: Message
    init(_ message: Message) { self.message = message }

    enum Keys: String, CodingKey { case role, content, name, tool_calls, tool_call_id }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: Keys.self)
        try container.encode(message.role.rawValue, forKey: .role)
        switch message.content {
        case .text(let text):
            if text.isEmpty && message.role == .assistant && !message.toolCalls.isEmpty {
                try container.encodeNil(forKey: .content)
            } else {
                try container.encode(text, forKey: .content)
            }
        case .parts(let parts):
            try container.encode(parts.map(OpenAIContentPart.init), forKey: .content)
        }
        try container.encodeIfPresent(message.name, forKey: .name)
        if !message.toolCalls.isEmpty {
            let calls: [JSONValue] = message.toolCalls.map { call in
                ["id": .string(call.id), "type": "function", "function": ["name": .string(call.name), "arguments": .string(call.arguments)]]
            }
            try container.encode(calls, forKey: .tool_calls)
        }
        try container.encodeIfPresent(message.toolCallID, forKey: .tool_call_id)
    }
}

struct OpenAIContentPart: Encodable {
    let part: ContentPart
    init(_ part: ContentPart) { self.part = part }

    func encode(to encoder: any Encoder) throws {
        let value: JSONValue
        switch part {
        case .text(let text):
            value = ["type": "text", "text": .string(text)]
        case .image(.url(let url, let detail)):
            var image: JSONObject = ["url": .string(url)]
            if let detail { image["detail"] = .string(detail) }
            value = ["type": "image_url", "image_url": .object(image)]
        case .image(.base64(let data, let mediaType)):
            value = ["type": "image_url", "image_url": ["url": .string("data:\(mediaType);base64,\(data)")]]
        }
        try value.encode(to: encoder)
    }
}

struct OpenAITool: Encodable {
    let tool: Tool
    init(_ tool: Tool) { self.tool = tool }

    func encode(to encoder: any Encoder) throws {
        var function: JSONObject = ["name": .string(tool.name), "parameters": tool.parameters]
        if let description = tool.description { function["description"] = .string(description) }
        if let strict = tool.strict { function["strict"] = .bool(strict) }
        let value: JSONValue = ["type": "function", "function": .object(function)]
        try value.encode(to: encoder)
    }
}

/// A string, or an array of `{"type":"text","text":...}` parts (some compatible servers answer so).
struct FlexibleText: Decodable, Equatable {
    let text: String
    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let text = try? container.decode(String.self) {
            self.text = text
        } else {
            let parts = try container.decode([JSONValue].self)
            self.text = parts.compactMap { $0["text"]?.stringValue }.joined()
        }
    }
}

/// A string or a number (error codes come as either).
struct StringOrNumber: Decodable, Equatable {
    let text: String
    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let text = try? container.decode(String.self) {
            self.text = text
        } else {
            self.text = String(try container.decode(Int.self))
        }
    }
}

struct OpenAIErrorBody: Decodable, Equatable {
    let message: String?
    let type: String?
    let code: StringOrNumber?
}

struct OpenAIErrorEnvelope: Decodable {
    let error: OpenAIErrorBody?
}

struct OpenAIUsage: Decodable, Equatable {
    struct PromptDetails: Decodable, Equatable {
        let cachedTokens: Int?
        enum CodingKeys: String, CodingKey { case cachedTokens = "cached_tokens" }
    }
    struct CompletionDetails: Decodable, Equatable {
        let reasoningTokens: Int?
        enum CodingKeys: String, CodingKey { case reasoningTokens = "reasoning_tokens" }
    }
    let promptTokens: Int?
    let completionTokens: Int?
    let totalTokens: Int?
    let promptTokensDetails: PromptDetails?
    let completionTokensDetails: CompletionDetails?

    enum CodingKeys: String, CodingKey {
        case promptTokens = "prompt_tokens"
        case completionTokens = "completion_tokens"
        case totalTokens = "total_tokens"
        case promptTokensDetails = "prompt_tokens_details"
        case completionTokensDetails = "completion_tokens_details"
    }

    var usage: Usage {
        Usage(
            promptTokens: promptTokens ?? 0,
            completionTokens: completionTokens ?? 0,
            totalTokens: totalTokens,
            cachedTokens: promptTokensDetails?.cachedTokens,
            reasoningTokens: completionTokensDetails?.reasoningTokens
        )
    }
}

struct OpenAIToolCallWire: Decodable, Equatable {
    struct Function: Decodable, Equatable {
        let name: String?
        let arguments: String?
    }
    let index: Int?
    let id: String?
    let function: Function?
}

struct OpenAICompletion: Decodable, Equatable {
    struct Choice: Decodable, Equatable {
        struct Message: Decodable, Equatable {
            let content: FlexibleText?
            let refusal: String?
            let toolCalls: [OpenAIToolCallWire]?
            enum CodingKeys: String, CodingKey {
                case content, refusal
                case toolCalls = "tool_calls"
            }
        }
        let index: Int?
        let message: Message?
        let finishReason: String?
        enum CodingKeys: String, CodingKey {
            case index, message
            case finishReason = "finish_reason"
        }
    }
    let id: String?
    let model: String?
    let choices: [Choice]?
    let usage: OpenAIUsage?
    let error: OpenAIErrorBody?
}

struct OpenAIStreamChunk: Decodable, Equatable {
    struct Choice: Decodable, Equatable {
        struct Delta: Decodable, Equatable {
            let content: String?
            let toolCalls: [OpenAIToolCallWire]?
            enum CodingKeys: String, CodingKey {
                case content
                case toolCalls = "tool_calls"
            }
        }
        let index: Int?
        let delta: Delta?
        let finishReason: String?
        enum CodingKeys: String, CodingKey {
            case index, delta
            case finishReason = "finish_reason"
        }
    }
    let id: String?
    let model: String?
    let choices: [Choice]?
    let usage: OpenAIUsage?
    let error: OpenAIErrorBody?
}
