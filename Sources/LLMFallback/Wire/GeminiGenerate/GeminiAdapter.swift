import Foundation
import NIOFoundationCompat
import NIOCore
import NIOHTTP1

/// Google Gemini generateContent (kind `google`, alias `gemini`).
///
/// Sends `POST {baseURL}/v1beta/models/{model}:generateContent` (streaming:
/// `:streamGenerateContent?alt=sse`) with the key in the `x-goog-api-key` header, never in the URL, so it cannot
/// leak into logs of URLs.
///
/// How the provider-neutral request maps onto Gemini:
///
/// - System messages become `systemInstruction`, joined with blank lines; assistant turns get the role `model`.
/// - An assistant's tool calls become `functionCall` parts; a tool result becomes a `functionResponse` part in a
///   user turn, named by ``Message/toolName`` or, when absent, by the assistant call it answers. Its content is
///   sent as the response object when it is a JSON object, else wrapped as `{"content": TEXT}`.
/// - Consecutive turns of the same role are merged.
/// - Tool parameter schemas and JSON output schemas are reduced to the OpenAPI subset Gemini accepts: keywords it
///   rejects (`additionalProperties`, `$schema`, `$ref`, ...) are dropped, `["string", "null"]` types become
///   `nullable`, `const` becomes a one-value `enum`, `oneOf` becomes `anyOf`. A tool without parameters is sent
///   without `parameters` (Gemini rejects an object schema with no properties).
/// - ``ChatRequest/parallelToolCalls`` and ``ChatRequest/user`` have no Gemini equivalent and are not sent.
/// - Usage: ``Usage/completionTokens`` includes thinking tokens (`thoughtsTokenCount`), as OpenAI counts them;
///   ``Usage/reasoningTokens`` reports them alone.
public struct GeminiAdapter: ProviderAdapter {
    /// Creates the adapter.
    public init() {}

    public func makeRequest(_ request: ChatRequest, for provider: ResolvedProvider, stream: Bool) throws(ProviderError) -> HTTPRequestParts {
        var headers = HTTPHeaders()
        headers.addJSONHeaders()
        if let key = provider.apiKey { headers.add(name: "x-goog-api-key", value: key) }
        if stream { headers.replaceOrAdd(name: "accept", value: "text/event-stream") }
        for (name, value) in provider.provider.headers.sorted(by: { $0.key < $1.key }) {
            headers.replaceOrAdd(name: name, value: value)
        }
        let url = "\(provider.baseURL)/v1beta/\(Self.modelPath(provider.provider.model))"
            + (stream ? ":streamGenerateContent?alt=sse" : ":generateContent")
        let conversation = try Self.conversation(request.messages, model: provider.provider.model)
        let body = GeminiRequestBody(
            request: request,
            model: provider.provider.model,
            contents: conversation.turns.map(\.json),
            system: conversation.system.isEmpty ? nil : conversation.system.joined(separator: "\n\n")
        )
        return HTTPRequestParts(method: .POST, url: url, headers: headers, body: try WireJSON.write(body.json))
    }

    public func decodeResponse(_ body: ByteBuffer, headers: HTTPHeaders, for provider: ResolvedProvider) throws(ProviderError) -> ChatResponse {
        let response = try GeminiResponseWire.parse(body, what: "Gemini response")
        if let error = response.error {
            throw Self.error(from: error, status: nil, headers: headers)
        }
        let candidate = try Self.firstCandidate(of: response, body: body)
        var text = ""
        var toolCalls: [ToolCall] = []
        for part in candidate.content?.parts ?? [] {
            if let call = part.functionCall {
                toolCalls.append(ToolCall(
                    id: call.id ?? "call_\(toolCalls.count)", name: call.name, arguments: (call.args ?? [:]).jsonString,
                    providerState: part.thoughtSignature.map { ProviderState(origin: Self.origin(provider.provider.model), value: $0) }
                ))
            } else if let partText = part.text, part.thought != true {
                text += partText
            }
        }
        var finish = candidate.finishReason.map(Self.finishReason)
        if finish == .stop && !toolCalls.isEmpty { finish = .toolCalls }
        var answer = ChatResponse(
            content: text,
            toolCalls: toolCalls,
            finishReason: finish,
            usage: response.usageMetadata?.usage,
            id: response.responseId,
            provider: provider.kind.name,
            providerName: provider.provider.name,
            model: response.modelVersion ?? provider.provider.model,
            rawBody: body.getData(at: body.readerIndex, length: body.readableBytes)
        )
        answer.wireFormat = .gemini
        return answer
    }

    public func droppedParameters(in request: ChatRequest, for provider: ResolvedProvider) -> [String] {
        var dropped: [String] = []
        if request.parallelToolCalls != nil { dropped.append("parallel_tool_calls") }
        if request.user != nil { dropped.append("user") }
        if let passthrough = request.passthrough, passthrough.format != .gemini { dropped += passthrough.droppedAcrossFormats }
        return dropped
    }

    /// Who may read a thought signature: the model that made it.
    static func origin(_ model: String) -> String { "gemini:\(model)" }

    /// Whether the model is of the Gemini 3 family, which validates thought signatures and takes a thinking level.
    static func isGemini3(_ model: String) -> Bool { model.contains("gemini-3") }

    public func classifyError(status: Int, headers: HTTPHeaders, body: ByteBuffer) -> ProviderError {
        // Errors come as `{"error": {...}}`, and from some endpoints as `[{"error": {...}}]`.
        let error = (try? WireJSON.decode(GeminiErrorEnvelope.self, from: body, what: "error"))?.error
            ?? (try? WireJSON.decode([GeminiErrorEnvelope].self, from: body, what: "error"))?.first?.error
        if let error {
            return Self.error(from: error, status: status, headers: headers)
        }
        return ErrorClassifier.unstructuredError(status: status, headers: headers, body: body)
    }

    public func makeStreamDecoder(for provider: ResolvedProvider) -> any StreamDecoder {
        GeminiStreamDecoder(provider: provider.kind.name, model: provider.provider.model)
    }

    // MARK: Mapping

    /// `models/{model}`, or the model as given when it already names a resource (`models/...`, `tunedModels/...`).
    static func modelPath(_ model: String) -> String {
        let path = model.contains("/") ? model : "models/\(model)"
        return path.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed) ?? path
    }

    static func finishReason(_ raw: String) -> FinishReason {
        switch raw {
        case "STOP": return .stop
        case "MAX_TOKENS": return .length
        case "SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY": return .contentFilter
        default: return .other(raw)
        }
    }

    /// The candidate to answer with, or the error a response without one stands for.
    static func firstCandidate(of response: GeminiResponseWire, body: ByteBuffer?) throws(ProviderError) -> GeminiResponseWire.Candidate {
        if let candidate = response.candidates?.first(where: { ($0.index ?? 0) == 0 }) ?? response.candidates?.first {
            return candidate
        }
        if let blocked = Self.blockedPromptError(response) { throw blocked }
        let snippet = body.map { "; body: \(WireJSON.snippet($0))" } ?? ""
        throw ProviderError(.invalidResponse, message: "Gemini response has no candidates\(snippet)")
    }

    /// The error for a prompt Gemini refused to answer (`promptFeedback.blockReason`).
    static func blockedPromptError(_ response: GeminiResponseWire) -> ProviderError? {
        guard let reason = response.promptFeedback?.blockReason, !reason.isEmpty else { return nil }
        var message = "Gemini blocked the prompt (blockReason \(reason))"
        if let detail = response.promptFeedback?.blockReasonMessage, !detail.isEmpty { message += ": \(detail)" }
        return ProviderError(.contentFiltered, message: message, code: reason)
    }

    /// The error a Google RPC error object stands for; `status` is `nil` for an error inside a stream.
    static func error(from error: GeminiErrorWire, status: Int?, headers: HTTPHeaders) -> ProviderError {
        let rpcStatus = error.status
        let message = error.message ?? "provider error"
        let details = error.details ?? []
        var transient: Bool?
        var kind: ProviderError.Kind
        switch rpcStatus {
        case "RESOURCE_EXHAUSTED":
            kind = .rateLimited
            if Self.isPerDayQuota(message: message, details: details) { transient = false }
        case "UNAVAILABLE": kind = .overloaded
        case "INTERNAL", "UNKNOWN", "ABORTED", "DATA_LOSS": kind = .serverError
        case "DEADLINE_EXCEEDED": kind = .timeout
        case "UNAUTHENTICATED": kind = .authentication
        case "PERMISSION_DENIED": kind = .permissionDenied
        case "NOT_FOUND": kind = .notFound
        case "INVALID_ARGUMENT", "FAILED_PRECONDITION", "OUT_OF_RANGE":
            kind = ErrorClassifier.mentionsContextLength(message) ? .contextLengthExceeded : .invalidRequest
        default:
            kind = ErrorClassifier.kind(forStatus: status ?? error.code ?? 500)
            if kind == .invalidRequest && ErrorClassifier.mentionsContextLength(message) { kind = .contextLengthExceeded }
        }
        let reasons = details.compactMap { $0["reason"]?.stringValue }
        if reasons.contains("API_KEY_INVALID") || message.lowercased().contains("api key not valid") {
            kind = .authentication
        }
        let retryInfo = details.first { $0["@type"]?.stringValue == "type.googleapis.com/google.rpc.RetryInfo" }
        let retryAfter = retryInfo?["retryDelay"]?.stringValue.flatMap(ErrorClassifier.parseGoogleDuration)
            ?? ErrorClassifier.retryAfter(from: headers)
        return ProviderError(
            kind,
            status: status,
            message: message,
            retryAfter: retryAfter,
            isTransient: transient,
            code: rpcStatus ?? error.code.map(String.init),
            requestID: ErrorClassifier.requestID(from: headers)
        )
    }

    /// Whether a quota error is about a daily quota, which waiting seconds does not restore.
    private static func isPerDayQuota(message: String, details: [JSONValue]) -> Bool {
        func perDay(_ text: String) -> Bool {
            let lower = text.lowercased()
            return lower.contains("perday") || lower.contains("per day")
        }
        if perDay(message) { return true }
        for detail in details where detail["@type"]?.stringValue == "type.googleapis.com/google.rpc.QuotaFailure" {
            for violation in detail["violations"]?.arrayValue ?? [] {
                let fields = [violation["quotaId"], violation["quotaMetric"]].compactMap { $0?.stringValue }
                if fields.contains(where: perDay) { return true }
            }
        }
        return false
    }

    /// The system instruction and the user/model turns of a conversation.
    static func conversation(_ messages: [Message], model: String = "") throws(ProviderError) -> (system: [String], turns: [GeminiTurn]) {
        var system: [String] = []
        var turns: [GeminiTurn] = []
        let toolNames = messages.toolNamesByCallID
        func append(_ role: String, _ parts: [JSONValue]) {
            if let last = turns.indices.last, turns[last].role == role {
                turns[last].parts += parts
            } else {
                turns.append(GeminiTurn(role: role, parts: parts))
            }
        }
        for (offset, message) in messages.enumerated() {
            switch message.role {
            case .system, Role(rawValue: "developer"):
                let text = message.content.text
                if !text.isEmpty { system.append(text) }
            case .user:
                append("user", try Self.parts(for: message.content, keepEmpty: true))
            case .assistant:
                var parts = try Self.parts(for: message.content, keepEmpty: message.toolCalls.isEmpty)
                for call in message.toolCalls {
                    var part: JSONObject = ["functionCall": ["name": .string(call.name), "args": AnthropicAdapter.argumentsObject(call.arguments)]]
                    if let state = call.providerState, state.origin == Self.origin(model) {
                        part["thoughtSignature"] = .string(state.value)
                    } else if Self.isGemini3(model) {
                        // A call made elsewhere (another provider, before a failover): Gemini 3 rejects a function
                        // call without a signature, and documents this value for history it did not make.
                        part["thoughtSignature"] = "skip_thought_signature_validator"
                    }
                    parts.append(.object(part))
                }
                append("model", parts)
            case .tool:
                guard let name = message.toolName ?? message.toolCallID.flatMap({ toolNames[$0] }) else {
                    throw ProviderError(
                        .invalidRequest,
                        message: "messages[\(offset)]: Gemini needs the tool's name: set toolName, or answer a call id of an earlier assistant message"
                    )
                }
                let text = message.content.text
                let response: JSONValue
                if message.isError {
                    // Gemini reads a function's failure from an `error` member of its response.
                    response = ["error": .string(text)]
                } else if let parsed = try? JSONValue(parsing: text), case .object = parsed {
                    response = parsed
                } else {
                    response = ["content": .string(text)]
                }
                append("user", [["functionResponse": ["name": .string(name), "response": response]]])
            default:
                throw ProviderError(.invalidRequest, message: "messages[\(offset)]: Gemini has no role '\(message.role)'")
            }
        }
        return (system, turns)
    }

    /// Text and image parts; empty text parts are dropped unless nothing else is left and `keepEmpty` is set.
    private static func parts(for content: Content, keepEmpty: Bool) throws(ProviderError) -> [JSONValue] {
        var parts: [JSONValue] = []
        for part in content.parts {
            switch part {
            case .text(let text):
                if !text.isEmpty { parts.append(["text": .string(text)]) }
            case .image(.base64(let data, let mediaType)):
                parts.append(["inlineData": ["mimeType": .string(mediaType), "data": .string(data)]])
            case .image(.url(let url, _)):
                if DataURLPayload.isDataURL(url) {
                    guard let payload = DataURLPayload(url) else {
                        throw ProviderError(.invalidRequest, message: "malformed data: URL for an image: \(url.prefix(60))")
                    }
                    parts.append(["inlineData": ["mimeType": .string(payload.mediaType), "data": .string(payload.base64)]])
                } else {
                    parts.append(["fileData": ["mimeType": .string(Self.mimeType(forURL: url)), "fileUri": .string(url)]])
                }
            }
        }
        if parts.isEmpty && keepEmpty { parts.append(["text": ""]) }
        return parts
    }

    /// The media type of a file URL, from its extension; `image/jpeg` when unknown.
    static func mimeType(forURL url: String) -> String {
        var path = Substring(url)
        if let end = path.firstIndex(where: { $0 == "?" || $0 == "#" }) { path = path[..<end] }
        guard let dot = path.lastIndex(of: "."), !path[dot...].contains("/") else { return "image/jpeg" }
        switch path[path.index(after: dot)...].lowercased() {
        case "png": return "image/png"
        case "jpg", "jpeg": return "image/jpeg"
        case "gif": return "image/gif"
        case "webp": return "image/webp"
        case "heic": return "image/heic"
        case "heif": return "image/heif"
        case "pdf": return "application/pdf"
        default: return "image/jpeg"
        }
    }

    /// A JSON Schema reduced to the OpenAPI subset Gemini's `Schema` accepts.
    static func schema(_ schema: JSONValue) -> JSONValue {
        guard case .object(let members) = schema else { return schema }
        var result: JSONObject = [:]
        for (key, value) in members {
            switch key {
            case "type":
                if case .array(let types) = value {
                    let names = types.compactMap(\.stringValue)
                    if let type = names.first(where: { $0 != "null" }) { result["type"] = .string(type) }
                    if names.contains("null") { result["nullable"] = true }
                } else {
                    result["type"] = value
                }
            case "properties":
                if case .object(let properties) = value { result["properties"] = .object(JSONObject(properties.map { ($0.key, Self.schema($0.value)) })) }
            case "items":
                result["items"] = Self.schema(value)
            case "anyOf", "oneOf":
                if case .array(let options) = value { result["anyOf"] = .array(options.map(Self.schema)) }
            case "const":
                if result["enum"] == nil { result["enum"] = [value] }
            case "enum":
                result["enum"] = value
            case "format", "title", "description", "nullable", "maxItems", "minItems", "required", "minProperties",
                "maxProperties", "minLength", "maxLength", "pattern", "example", "propertyOrdering", "default", "minimum",
                "maximum":
                result[key] = value
            default:
                continue
            }
        }
        return .object(result)
    }
}

/// One turn of a Gemini conversation, before rendering.
struct GeminiTurn {
    var role: String
    var parts: [JSONValue]

    var json: JSONValue { ["role": .string(role), "parts": .array(parts)] }
}

/// Decodes Gemini's `alt=sse` stream, where every event is a whole `GenerateContentResponse`.
///
/// Function calls arrive whole (id, name and complete arguments in one delta); their indices count the calls of
/// the whole stream. A finish reason is the stream's terminator; the usage is attached to the chunk that carries
/// it.
public struct GeminiStreamDecoder: StreamDecoder {
    private let provider: String
    private var model: String
    private let configuredModel: String
    private var id: String?
    private var toolCallCount = 0
    private var usage: Usage?
    public private(set) var isComplete = false
    /// Never: a usage event may follow the finish reason, so the stream is read until its body ends.
    public var isExhausted: Bool { false }

    /// Creates a decoder for a stream from `provider` asked for `model`.
    public init(provider: String, model: String) {
        self.provider = provider
        self.model = model
        self.configuredModel = model
    }

    public mutating func decode(_ event: ServerSentEvent) throws(ProviderError) -> ChatChunk? {
        if event.data.isEmpty { return nil }
        let response = try GeminiResponseWire.parse(event.data, what: "Gemini stream event")
        if let error = response.error {
            throw GeminiAdapter.error(from: error, status: nil, headers: [:])
        }
        if response.candidates?.isEmpty ?? true, let blocked = GeminiAdapter.blockedPromptError(response) {
            throw blocked
        }
        if let responseID = response.responseId { id = responseID }
        if let version = response.modelVersion, !version.isEmpty { model = version }
        let wasComplete = isComplete
        if let reported = response.usageMetadata?.usage { usage = reported }

        var result = ChatChunk(id: id, provider: provider, model: model)
        let candidate = response.candidates?.first(where: { ($0.index ?? 0) == 0 }) ?? response.candidates?.first
        if let candidate {
            for part in candidate.content?.parts ?? [] {
                if let call = part.functionCall {
                    let index = toolCallCount
                    toolCallCount += 1
                    var delta = ToolCallDelta(index: index, id: call.id ?? "call_\(index)", name: call.name, arguments: (call.args ?? [:]).jsonString)
                    delta.providerState = part.thoughtSignature.map { ProviderState(origin: GeminiAdapter.origin(configuredModel), value: $0) }
                    result.toolCallDeltas.append(delta)
                } else if let text = part.text, part.thought != true {
                    result.content += text
                }
            }
            if let raw = candidate.finishReason, !raw.isEmpty {
                var finish = GeminiAdapter.finishReason(raw)
                if finish == .stop && toolCallCount > 0 { finish = .toolCalls }
                result.finishReason = finish
                isComplete = true
            }
        }
        if result.finishReason != nil || (wasComplete && response.usageMetadata != nil) {
            result.usage = usage
        }
        if !result.hasContent && result.finishReason == nil && result.usage == nil { return nil }
        return result
    }
}

// MARK: - Request body

struct GeminiRequestBody {
    let request: ChatRequest
    let model: String
    let contents: [JSONValue]
    let system: String?

    var json: JSONObject {
        var body: JSONObject = ["contents": .array(contents)]
        if let system {
            body["systemInstruction"] = ["parts": [["text": .string(system)]]]
        }
        let config = generationConfig
        if !config.isEmpty { body["generationConfig"] = .object(config) }
        if !request.tools.isEmpty {
            let declarations: [JSONValue] = request.tools.map { tool in
                var declaration: JSONObject = ["name": .string(tool.name)]
                if let description = tool.description { declaration["description"] = .string(description) }
                let parameters = GeminiAdapter.schema(tool.parameters)
                let isEmptyObject = parameters["type"]?.stringValue?.lowercased() == "object"
                    && (parameters["properties"]?.members?.isEmpty ?? true)
                if !isEmptyObject { declaration["parameters"] = parameters }
                return .object(declaration)
            }
            body["tools"] = [["functionDeclarations": .array(declarations)]]
            if let choice = request.toolChoice {
                var calling: JSONObject
                switch choice {
                case .auto: calling = ["mode": "AUTO"]
                case .none: calling = ["mode": "NONE"]
                case .required: calling = ["mode": "ANY"]
                case .tool(let name): calling = ["mode": "ANY", "allowedFunctionNames": [.string(name)]]
                }
                body["toolConfig"] = ["functionCallingConfig": .object(calling)]
            }
        }
        for (key, value) in request.extraBody[.gemini] ?? [:] { body[key] = value }
        return body
    }

    private var generationConfig: JSONObject {
        var config: JSONObject = [:]
        if let maxTokens = request.maxTokens { config["maxOutputTokens"] = .int(maxTokens) }
        if let temperature = request.temperature { config["temperature"] = .double(temperature) }
        if let topP = request.topP { config["topP"] = .double(topP) }
        if !request.stop.isEmpty { config["stopSequences"] = .array(request.stop.map(JSONValue.string)) }
        if let seed = request.seed { config["seed"] = .int(seed) }
        if let penalty = request.presencePenalty { config["presencePenalty"] = .double(penalty) }
        if let penalty = request.frequencyPenalty { config["frequencyPenalty"] = .double(penalty) }
        if let logprobs = request.logprobs { config["responseLogprobs"] = .bool(logprobs) }
        if let top = request.topLogprobs { config["logprobs"] = .int(top) }
        if let effort = request.reasoningEffort {
            if GeminiAdapter.isGemini3(model) {
                config["thinkingConfig"] = ["thinkingLevel": effort == .low || effort == .minimal || effort == .none ? "low" : "high"]
            } else {
                config["thinkingConfig"] = ["thinkingBudget": .int(effort.thinkingBudget ?? 0)]
            }
        }
        switch request.responseFormat {
        case .jsonObject?:
            config["responseMimeType"] = "application/json"
        case .jsonSchema(_, let schema, _)?:
            config["responseMimeType"] = "application/json"
            config["responseSchema"] = GeminiAdapter.schema(schema)
        case .text?, nil:
            break
        }
        return config
    }
}

// MARK: - Wire types

struct GeminiErrorWire: Decodable {
    let code: Int?
    let message: String?
    let status: String?
    let details: [JSONValue]?
}

struct GeminiErrorEnvelope: Decodable {
    let error: GeminiErrorWire?
}

struct GeminiUsageWire: Decodable {
    let promptTokenCount: Int?
    let candidatesTokenCount: Int?
    let totalTokenCount: Int?
    let cachedContentTokenCount: Int?
    let thoughtsTokenCount: Int?

    var usage: Usage {
        Usage(
            promptTokens: promptTokenCount ?? 0,
            completionTokens: max(0, candidatesTokenCount ?? 0).saturatingAdd(max(0, thoughtsTokenCount ?? 0)),
            totalTokens: totalTokenCount,
            cachedTokens: cachedContentTokenCount,
            reasoningTokens: thoughtsTokenCount
        )
    }
}

struct GeminiResponseWire: Decodable {
    struct FunctionCall: Decodable {
        let id: String?
        let name: String
        let args: JSONValue?
    }
    struct Part: Decodable {
        let text: String?
        let thought: Bool?
        let functionCall: FunctionCall?
        let thoughtSignature: String?
    }
    struct Content: Decodable {
        let parts: [Part]?
        let role: String?
    }
    struct Candidate: Decodable {
        let content: Content?
        let finishReason: String?
        let index: Int?
    }
    struct PromptFeedback: Decodable {
        let blockReason: String?
        let blockReasonMessage: String?
    }
    let candidates: [Candidate]?
    let promptFeedback: PromptFeedback?
    let usageMetadata: GeminiUsageWire?
    let responseId: String?
    let modelVersion: String?
    let error: GeminiErrorWire?
}

// MARK: - Reading a response from the package's JSON tree

extension GeminiResponseWire {
    /// A response or stream event read through ``JSONParser`` (function call arguments keep their member order,
    /// and it is faster than `JSONDecoder`); anything it does not expect goes to `JSONDecoder`, which words the
    /// error.
    static func parse(_ body: ByteBuffer, what: String) throws(ProviderError) -> GeminiResponseWire {
        if let value = try? JSONParser.parse(body), let wire = GeminiResponseWire(json: value) { return wire }
        return try WireJSON.decode(GeminiResponseWire.self, from: body, what: what)
    }

    static func parse(_ text: String, what: String) throws(ProviderError) -> GeminiResponseWire {
        if let value = try? JSONValue(parsing: text), let wire = GeminiResponseWire(json: value) { return wire }
        return try WireJSON.decode(GeminiResponseWire.self, from: text, what: what)
    }

    /// `nil` when a member has an unexpected type.
    init?(json: JSONValue) {
        guard case .object(let root) = json else { return nil }
        var candidates: [Candidate]?
        if let raw = root["candidates"], raw != .null {
            guard let elements = raw.arrayValue else { return nil }
            candidates = []
            for element in elements {
                guard let candidate = Candidate(json: element) else { return nil }
                candidates!.append(candidate)
            }
        }
        guard let feedback = JSONField.optional(root["promptFeedback"], PromptFeedback.init(json:)),
            let usage = JSONField.optional(root["usageMetadata"], GeminiUsageWire.init(json:)),
            let responseID = JSONField.string(root["responseId"]), let version = JSONField.string(root["modelVersion"]),
            let error = JSONField.optional(root["error"], GeminiErrorWire.init(json:))
        else { return nil }
        self.init(candidates: candidates, promptFeedback: feedback.value, usageMetadata: usage.value, responseId: responseID.value,
            modelVersion: version.value, error: error.value)
    }
}

extension GeminiResponseWire.Candidate {
    init?(json: JSONValue) {
        guard case .object(let members) = json,
            let content = JSONField.optional(members["content"], GeminiResponseWire.Content.init(json:)),
            let finish = JSONField.string(members["finishReason"]), let index = JSONField.int(members["index"])
        else { return nil }
        self.init(content: content.value, finishReason: finish.value, index: index.value)
    }
}

extension GeminiResponseWire.Content {
    init?(json: JSONValue) {
        guard case .object(let members) = json, let role = JSONField.string(members["role"]) else { return nil }
        var parts: [GeminiResponseWire.Part]?
        if let raw = members["parts"], raw != .null {
            guard let elements = raw.arrayValue else { return nil }
            parts = []
            for element in elements {
                guard let part = GeminiResponseWire.Part(json: element) else { return nil }
                parts!.append(part)
            }
        }
        self.init(parts: parts, role: role.value)
    }
}

extension GeminiResponseWire.Part {
    init?(json: JSONValue) {
        guard case .object(let members) = json, let text = JSONField.string(members["text"]),
            let signature = JSONField.string(members["thoughtSignature"]),
            let call = JSONField.optional(members["functionCall"], GeminiResponseWire.FunctionCall.init(json:))
        else { return nil }
        var thought: Bool?
        switch members["thought"] {
        case nil, .null?: break
        case .bool(let value)?: thought = value
        default: return nil
        }
        self.init(text: text.value, thought: thought, functionCall: call.value, thoughtSignature: signature.value)
    }
}

extension GeminiResponseWire.FunctionCall {
    init?(json: JSONValue) {
        guard case .object(let members) = json, let id = JSONField.string(members["id"]), let name = members["name"]?.stringValue
        else { return nil }
        let args = members["args"].flatMap { $0 == .null ? nil : $0 }
        self.init(id: id.value, name: name, args: args)
    }
}

extension GeminiResponseWire.PromptFeedback {
    init?(json: JSONValue) {
        guard case .object(let members) = json, let reason = JSONField.string(members["blockReason"]),
            let message = JSONField.string(members["blockReasonMessage"])
        else { return nil }
        self.init(blockReason: reason.value, blockReasonMessage: message.value)
    }
}

extension GeminiUsageWire {
    init?(json: JSONValue) {
        guard case .object(let members) = json, let prompt = JSONField.int(members["promptTokenCount"]),
            let candidates = JSONField.int(members["candidatesTokenCount"]), let total = JSONField.int(members["totalTokenCount"]),
            let cached = JSONField.int(members["cachedContentTokenCount"]), let thoughts = JSONField.int(members["thoughtsTokenCount"])
        else { return nil }
        self.init(promptTokenCount: prompt.value, candidatesTokenCount: candidates.value, totalTokenCount: total.value,
            cachedContentTokenCount: cached.value, thoughtsTokenCount: thoughts.value)
    }
}

extension GeminiErrorWire {
    init?(json: JSONValue) {
        guard case .object(let members) = json, let code = JSONField.int(members["code"]),
            let message = JSONField.string(members["message"]), let status = JSONField.string(members["status"])
        else { return nil }
        var details: [JSONValue]?
        switch members["details"] {
        case nil, .null?: break
        case .array(let elements)?: details = elements
        default: return nil
        }
        self.init(code: code.value, message: message.value, status: status.value, details: details)
    }
}
