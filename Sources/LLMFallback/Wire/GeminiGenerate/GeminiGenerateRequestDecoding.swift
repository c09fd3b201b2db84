import NIOCore

/// The server half of Google Gemini `generateContent`: what a gateway needs to take requests in Gemini's format
/// (`POST /v1beta/models/{model}:generateContent` and `:streamGenerateContent?alt=sse`) and answer them in it.
///
/// ```swift
/// let decoded = try GeminiGenerateServer.decodeRequest(body, model: "gemini-2.5-flash", stream: false)
/// let answer = try await chain.chat(decoded.request)
/// let bytes = GeminiGenerateServer.encodeResponse(answer, id: "resp-1", model: decoded.model)
/// ```
///
/// How a `GenerateContentRequest` maps onto ``ChatRequest``:
///
/// - `systemInstruction`'s text parts become ``Role/system`` messages at the start, one per part.
/// - A `user` turn's `text`, `inlineData` and `fileData` parts become one user message (`inlineData` as a base64
///   image, `fileData` as an image URL); each `functionResponse` part becomes a ``Role/tool`` message, named by
///   the function, answering the call of that name (or id) that is not answered yet. Its `response` object
///   becomes the message's text: the string of a `{"content": "..."}` object, else the object's JSON.
/// - A `model` turn's text becomes an assistant message and its `functionCall` parts its ``Message/toolCalls``
///   (`args` kept as JSON text, members in order). Calls without an `id` are numbered `call_0`, `call_1`, ... in
///   the order of the conversation. A part's `thoughtSignature` becomes the call's ``ToolCall/providerState``,
///   which only a Gemini provider of the same model is sent back.
/// - `tools[].functionDeclarations` (with `parameters` or `parametersJsonSchema`; schema `type` names in lower
///   case, as JSON Schema writes them), `toolConfig.functionCallingConfig` (`AUTO`, `ANY`, `NONE`; `ANY` with one
///   allowed function as that tool) and `generationConfig` (`maxOutputTokens`, `temperature`, `topP`,
///   `stopSequences`, `seed`, the penalties, `responseLogprobs` and `logprobs`, `responseMimeType` with
///   `responseSchema` or `responseJsonSchema`, `thinkingConfig`'s budget or level).
/// - Members may be spelled in lowerCamelCase or snake_case (`system_instruction`, `inline_data`), as Google's
///   JSON parser accepts both; a member given in both spellings is refused.
/// - What the neutral request has no place for is kept in ``ChatRequest/passthrough`` and named: top-level
///   members in ``PassthroughBody/unmodelledKeys``, nested content in ``Request/unmappedContent``.
public enum GeminiGenerateServer {
    /// A client's `generateContent` or `streamGenerateContent` request, decoded.
    public struct Request: Sendable {
        /// The model the URL names: for a gateway, the chain to ask.
        public var model: String
        /// The provider-neutral request, its ``ChatRequest/passthrough`` holding the client's body.
        public var request: ChatRequest
        /// Whether the answer is streamed (`streamGenerateContent`): the URL says so, not the body.
        public var stream: Bool
        /// What the body holds below its top level that ``request`` does not carry, for a provider of another
        /// format to report as dropped: `parts.thought`, `parts.executableCode`, `tools.googleSearch`,
        /// `generationConfig.topK`, ... At most 32 names.
        public var unmappedContent: [String]
    }

    /// The top-level members (in lowerCamelCase) ``decodeRequest(_:model:stream:)`` maps onto ``ChatRequest``;
    /// every other member (`safetySettings`, `cachedContent`, ...) is kept only in the passthrough body.
    public static let modelledKeys: Set<String> = ["contents", "systemInstruction", "tools", "toolConfig", "generationConfig"]

    /// Decodes a request body.
    ///
    /// The body is read by the package's one JSON parser, so its rules hold: a key repeated anywhere is refused
    /// (with the key named), nested values keep their member order, and numbers keep their exact value.
    /// `candidateCount` other than 1 is refused: a chain answers once.
    ///
    /// - Parameters:
    ///   - body: The request body.
    ///   - model: The model the URL names (`gemini-2.5-flash` of `models/gemini-2.5-flash:generateContent`).
    ///   - stream: Whether the URL's method is `streamGenerateContent`.
    /// - Returns: The request.
    /// - Throws: ``WireRequestError`` naming what is wrong and where (`contents[1].parts[0].functionCall.name`).
    public static func decodeRequest(_ body: ByteBuffer, model: String, stream: Bool = false) throws(WireRequestError) -> Request {
        guard body.readableBytes > 0 else {
            throw WireRequestError("the request body is empty: send a JSON object with 'contents'")
        }
        let root: JSONValue
        do {
            root = try JSONParser.parse(body)
        } catch {
            throw .syntax(error)
        }
        guard case .object(let original) = root else {
            throw .type("body", expected: "an object", got: root)
        }
        let members = try camelCased(original, path: "")
        let reader = MemberReader(members, path: "")
        guard let rawContents = try reader.array("contents") else { throw .missing("contents") }
        guard !rawContents.isEmpty else {
            throw .value("'contents' must contain at least one content", param: "contents")
        }
        var decoder = Decoder(model: model)
        var messages: [Message] = []
        messages.reserveCapacity(rawContents.count + 1)
        if let system = try reader.object("systemInstruction") {
            try decoder.system(system, into: &messages)
        }
        for (offset, raw) in rawContents.enumerated() {
            try decoder.content(raw, path: "contents[\(offset)]", into: &messages)
        }
        var request = ChatRequest(messages: messages)
        if let tools = try reader.array("tools") {
            for (offset, raw) in tools.enumerated() {
                try decoder.tools(raw, path: "tools[\(offset)]", into: &request.tools)
            }
        }
        if let config = try reader.object("toolConfig") {
            request.toolChoice = try decoder.toolChoice(try camelCased(config, path: "toolConfig"))
        }
        if let config = try reader.object("generationConfig") {
            try decoder.generationConfig(try camelCased(config, path: "generationConfig"), into: &request)
        }
        request.passthrough = PassthroughBody(
            format: .gemini,
            body: original,
            unmodelledKeys: original.keys.filter { !modelledKeys.contains(camelCase($0)) },
            messageCount: messages.count,
            unmappedContent: decoder.unmapped.names
        )
        return Request(model: model, request: request, stream: stream, unmappedContent: decoder.unmapped.names)
    }

    /// `key` in lowerCamelCase: `system_instruction` is `systemInstruction`.
    static func camelCase(_ key: String) -> String {
        guard key.utf8.contains(UInt8(ascii: "_")) else { return key }
        var result = ""
        result.reserveCapacity(key.utf8.count)
        var upper = false
        for character in key {
            if character == "_" {
                upper = !result.isEmpty
            } else if upper {
                result += character.uppercased()
                upper = false
            } else {
                result.append(character)
            }
        }
        return result
    }

    /// An object of the request's structure with its keys in lowerCamelCase (values untouched).
    ///
    /// - Throws: When a member is given in both spellings.
    static func camelCased(_ object: JSONObject, path: String) throws(WireRequestError) -> JSONObject {
        guard object.keys.contains(where: { $0.utf8.contains(UInt8(ascii: "_")) }) else { return object }
        var result = JSONObject()
        for (key, value) in object {
            let name = camelCase(key)
            guard result.appendNew(name, value) else {
                let place = path.isEmpty ? "the request body" : "'\(path)'"
                throw WireRequestError(
                    "\(place) gives '\(name.prefix(64))' twice (as '\(key.prefix(64))' and in another spelling): send it once",
                    param: path.isEmpty ? String(name.prefix(64)) : "\(path).\(name.prefix(64))", code: "duplicate_key")
            }
        }
        return result
    }

    /// The conversation's reading state: call ids handed out, calls not answered yet, what was not mapped.
    private struct Decoder {
        let model: String
        var unmapped = UnmappedContent()
        /// Calls numbered so far (`call_N` for calls and responses without an id).
        var callCount = 0
        /// The ids of the calls of each name, oldest first, that no response answered by name yet (a hostile body
        /// may hold many thousands: each is looked at once).
        var pending: [String: ArraySlice<String>] = [:]
        /// The ids that responses answered by id.
        var answered: Set<String> = []

        init(model: String) {
            self.model = model
        }

        mutating func system(_ raw: JSONObject, into messages: inout [Message]) throws(WireRequestError) {
            let system = try camelCased(raw, path: "systemInstruction")
            guard let parts = try MemberReader(system, path: "systemInstruction").array("parts") else { return }
            for (offset, rawPart) in parts.enumerated() {
                let path = "systemInstruction.parts[\(offset)]"
                guard case .object(let part) = rawPart else { throw .type(path, expected: "an object", got: rawPart) }
                let members = try camelCased(part, path: path)
                guard let text = try MemberReader(members, path: path).string("text") else {
                    unmapped.note("systemInstruction.parts", members.keys.first ?? "empty")
                    continue
                }
                if !text.isEmpty { messages.append(.system(text)) }
            }
        }

        mutating func content(_ raw: JSONValue, path: String, into messages: inout [Message]) throws(WireRequestError) {
            guard case .object(let object) = raw else { throw .type(path, expected: "an object", got: raw) }
            let members = try camelCased(object, path: path)
            let reader = MemberReader(members, path: path)
            let role = try reader.string("role") ?? "user"
            guard let parts = try reader.array("parts") else { throw .missing(path + ".parts") }
            switch role {
            case "user", "function":
                try userTurn(parts, path: path + ".parts", into: &messages)
            case "model":
                messages.append(try modelTurn(parts, path: path + ".parts"))
            default:
                throw .value(
                    "invalid role '\(role.prefix(64))' in '\(path)': expected user or model (the system prompt is 'systemInstruction')",
                    param: path + ".role")
            }
        }

        private mutating func userTurn(_ rawParts: [JSONValue], path: String, into messages: inout [Message]) throws(WireRequestError) {
            var parts: [ContentPart] = []
            var emitted = false
            func flush() {
                guard !parts.isEmpty else { return }
                let content: Content = parts.count == 1 && Self.isText(parts[0]) ? .text(Content.parts(parts).text) : .parts(parts)
                messages.append(Message(role: .user, content: content))
                parts.removeAll()
                emitted = true
            }
            for (offset, raw) in rawParts.enumerated() {
                let partPath = "\(path)[\(offset)]"
                let members = try Self.part(raw, path: partPath)
                if let response = try MemberReader(members, path: partPath).object("functionResponse") {
                    flush()
                    let responsePath = partPath + ".functionResponse"
                    messages.append(try functionResponse(try camelCased(response, path: responsePath), path: responsePath))
                    emitted = true
                } else if members["functionCall"].map({ $0 != .null }) ?? false {
                    throw .value("'\(partPath)' is a functionCall part: those belong to model turns", param: partPath + ".functionCall")
                } else if let part = try contentPart(members, path: partPath) {
                    parts.append(part)
                }
            }
            flush()
            if !emitted { messages.append(Message(role: .user, content: .text(""))) }
        }

        private mutating func modelTurn(_ rawParts: [JSONValue], path: String) throws(WireRequestError) -> Message {
            var parts: [ContentPart] = []
            var calls: [ToolCall] = []
            for (offset, raw) in rawParts.enumerated() {
                let partPath = "\(path)[\(offset)]"
                let members = try Self.part(raw, path: partPath)
                let reader = MemberReader(members, path: partPath)
                if let rawCall = try reader.object("functionCall") {
                    let callPath = partPath + ".functionCall"
                    let call = try camelCased(rawCall, path: callPath)
                    let callReader = MemberReader(call, path: callPath)
                    let name = try callReader.requiredString("name")
                    let arguments: String
                    switch call["args"] {
                    case nil, .null?: arguments = "{}"
                    case .object(let args)?: arguments = JSONValue.object(args).jsonString
                    case let other?: throw .type(callPath + ".args", expected: "an object", got: other)
                    }
                    var id: String
                    var state: ProviderState?
                    if let given = try callReader.string("id") {
                        (id, state) = ProviderState.decodeID(given)
                    } else {
                        id = "call_\(callCount)"
                    }
                    callCount = callCount.saturatingAdd(1)
                    if state == nil, let signature = try reader.string("thoughtSignature"), signature != Self.signatureBypass {
                        state = ProviderState(origin: GeminiAdapter.origin(model), value: signature)
                    }
                    calls.append(ToolCall(id: id, name: name, arguments: arguments, providerState: state))
                    pending[name, default: []].append(id)
                } else if members["functionResponse"].map({ $0 != .null }) ?? false {
                    throw .value(
                        "'\(partPath)' is a functionResponse part: those belong to user turns", param: partPath + ".functionResponse")
                } else if let part = try contentPart(members, path: partPath) {
                    parts.append(part)
                }
            }
            let content: Content
            if parts.contains(where: { !Self.isText($0) }) {
                content = .parts(parts)
            } else {
                content = .text(Content.parts(parts).text)
            }
            return Message(role: .assistant, content: content, toolCalls: calls)
        }

        /// The value Gemini documents for a call it did not make; it carries no state to keep.
        static let signatureBypass = "skip_thought_signature_validator"

        private mutating func functionResponse(_ members: JSONObject, path: String) throws(WireRequestError) -> Message {
            let reader = MemberReader(members, path: path)
            let name = try reader.requiredString("name")
            var callID: String?
            if let given = try reader.string("id") {
                callID = ProviderState.decodeID(given).id
                answered.insert(callID!)
            } else {
                while let oldest = pending[name]?.popFirst() {
                    if answered.insert(oldest).inserted {
                        callID = oldest
                        break
                    }
                }
            }
            if callID == nil {
                // A response to no call of this conversation: it still needs an id of its own.
                callID = "call_\(callCount)"
                callCount = callCount.saturatingAdd(1)
            }
            let text: String
            switch members["response"] {
            case nil, .null?:
                text = ""
            case .object(let response)?:
                if response.count == 1, case .string(let content)? = response["content"] {
                    text = content
                } else {
                    text = JSONValue.object(response).jsonString
                }
            case let other?:
                throw .type(path + ".response", expected: "an object", got: other)
            }
            return Message(role: .tool, content: .text(text), toolCallID: callID!, toolName: name)
        }

        /// A text, `inlineData` or `fileData` part's content; `nil` (noted as unmapped) for thoughts and parts the
        /// neutral model has no place for.
        private mutating func contentPart(_ members: JSONObject, path: String) throws(WireRequestError) -> ContentPart? {
            let reader = MemberReader(members, path: path)
            if try reader.bool("thought") == true {
                unmapped.note("parts.thought")
                return nil
            }
            if members["thoughtSignature"].map({ $0 != .null }) ?? false { unmapped.note("parts.thoughtSignature") }
            if let text = try reader.string("text") {
                return .text(text)
            }
            if let data = try reader.object("inlineData") {
                let inline = try camelCased(data, path: path + ".inlineData")
                let inlineReader = MemberReader(inline, path: path + ".inlineData")
                return .image(.base64(try inlineReader.requiredString("data"), mediaType: try inlineReader.requiredString("mimeType")))
            }
            if let data = try reader.object("fileData") {
                let file = try camelCased(data, path: path + ".fileData")
                return .image(.url(try MemberReader(file, path: path + ".fileData").requiredString("fileUri")))
            }
            // executableCode, codeExecutionResult, videoMetadata alone, and kinds added later.
            unmapped.note("parts", members.keys.first { $0 != "thoughtSignature" } ?? "empty")
            return nil
        }

        mutating func tools(_ raw: JSONValue, path: String, into tools: inout [Tool]) throws(WireRequestError) {
            guard case .object(let object) = raw else { throw .type(path, expected: "an object", got: raw) }
            let members = try camelCased(object, path: path)
            for (key, value) in members where key != "functionDeclarations" && value != .null {
                unmapped.note("tools", key)
            }
            guard let declarations = try MemberReader(members, path: path).array("functionDeclarations") else { return }
            for (offset, rawDeclaration) in declarations.enumerated() {
                let declarationPath = "\(path).functionDeclarations[\(offset)]"
                guard case .object(let declarationObject) = rawDeclaration else {
                    throw .type(declarationPath, expected: "an object", got: rawDeclaration)
                }
                let declaration = try camelCased(declarationObject, path: declarationPath)
                let reader = MemberReader(declaration, path: declarationPath)
                var tool = Tool(name: try reader.requiredString("name"), description: try reader.string("description"))
                if let schema = try reader.object("parametersJsonSchema") {
                    tool.parameters = .object(schema)
                } else if let schema = try reader.object("parameters") {
                    tool.parameters = Self.jsonSchema(.object(schema))
                }
                for key in ["response", "responseJsonSchema", "behavior"] where declaration[key].map({ $0 != .null }) ?? false {
                    unmapped.note("functionDeclarations", key)
                }
                tools.append(tool)
            }
        }

        mutating func toolChoice(_ config: JSONObject) throws(WireRequestError) -> ToolChoice? {
            guard let rawCalling = try MemberReader(config, path: "toolConfig").object("functionCallingConfig") else { return nil }
            let calling = try camelCased(rawCalling, path: "toolConfig.functionCallingConfig")
            let reader = MemberReader(calling, path: "toolConfig.functionCallingConfig")
            var names: [String] = []
            if let allowed = try reader.array("allowedFunctionNames") {
                for (offset, name) in allowed.enumerated() {
                    guard case .string(let text) = name else {
                        throw .type("toolConfig.functionCallingConfig.allowedFunctionNames[\(offset)]", expected: "a string", got: name)
                    }
                    names.append(text)
                }
            }
            switch try reader.string("mode") {
            case nil, "MODE_UNSPECIFIED"?: return nil
            case "AUTO"?: return .auto
            case "NONE"?: return ToolChoice.none
            case "VALIDATED"?:
                unmapped.note("toolConfig.VALIDATED")
                return .auto
            case "ANY"?:
                if names.count == 1 { return .tool(names[0]) }
                if names.count > 1 { unmapped.note("toolConfig.allowedFunctionNames") }
                return .required
            case let other?:
                throw .value(
                    "invalid 'toolConfig.functionCallingConfig.mode' '\(other.prefix(64))': expected AUTO, ANY, NONE or VALIDATED",
                    param: "toolConfig.functionCallingConfig.mode")
            }
        }

        private static let generationKeys: Set<String> = [
            "maxOutputTokens", "temperature", "topP", "stopSequences", "seed", "presencePenalty", "frequencyPenalty",
            "responseLogprobs", "logprobs", "responseMimeType", "responseSchema", "responseJsonSchema", "thinkingConfig",
            "candidateCount",
        ]

        mutating func generationConfig(_ config: JSONObject, into request: inout ChatRequest) throws(WireRequestError) {
            let reader = MemberReader(config, path: "generationConfig")
            for (key, value) in config where !Self.generationKeys.contains(key) && value != .null {
                unmapped.note("generationConfig", key)
            }
            if let count = try reader.int("candidateCount"), count != 1 {
                throw .value(
                    "'generationConfig.candidateCount' must be 1: the gateway returns one candidate", param: "generationConfig.candidateCount")
            }
            request.maxTokens = try reader.int("maxOutputTokens")
            request.temperature = try reader.double("temperature")
            request.topP = try reader.double("topP")
            if let stops = try reader.array("stopSequences") {
                for (offset, stop) in stops.enumerated() {
                    guard case .string(let text) = stop else {
                        throw .type("generationConfig.stopSequences[\(offset)]", expected: "a string", got: stop)
                    }
                    request.stop.append(text)
                }
            }
            request.seed = try reader.int("seed")
            request.presencePenalty = try reader.double("presencePenalty")
            request.frequencyPenalty = try reader.double("frequencyPenalty")
            request.logprobs = try reader.bool("responseLogprobs")
            request.topLogprobs = try reader.int("logprobs")
            switch try reader.string("responseMimeType") {
            case nil: break
            case "application/json"?:
                if let schema = try reader.object("responseJsonSchema") {
                    request.responseFormat = .jsonSchema(name: "response", schema: .object(schema))
                } else if let schema = try reader.object("responseSchema") {
                    request.responseFormat = .jsonSchema(name: "response", schema: Self.jsonSchema(.object(schema)))
                } else {
                    request.responseFormat = .jsonObject
                }
            case "text/plain"?:
                request.responseFormat = .text
            case let other?:
                unmapped.note("generationConfig.responseMimeType", other)
            }
            if let rawThinking = try reader.object("thinkingConfig") {
                let thinking = try camelCased(rawThinking, path: "generationConfig.thinkingConfig")
                let thinkingReader = MemberReader(thinking, path: "generationConfig.thinkingConfig")
                if let level = try thinkingReader.string("thinkingLevel") {
                    request.reasoningEffort = ReasoningEffort(rawValue: level.lowercased())
                } else if let budget = try thinkingReader.int("thinkingBudget") {
                    // -1 asks for dynamic thinking, the model's default.
                    if budget == 0 {
                        request.reasoningEffort = ReasoningEffort.none
                    } else if budget > 0 {
                        request.reasoningEffort = .nearest(toBudget: budget)
                    }
                }
                if try thinkingReader.bool("includeThoughts") != nil { unmapped.note("thinkingConfig.includeThoughts") }
            }
        }

        /// A Gemini `Schema` as JSON Schema writes it: `type` names in lower case (`OBJECT` is `object`), through
        /// `properties`, `items` and `anyOf`; everything else as it is, in its order.
        static func jsonSchema(_ schema: JSONValue) -> JSONValue {
            guard case .object(let members) = schema else { return schema }
            var result = JSONObject()
            for (key, value) in members {
                switch (key, value) {
                case ("type", .string(let type)):
                    result[key] = .string(type.lowercased())
                case ("properties", .object(let properties)):
                    result[key] = .object(JSONObject(properties.map { ($0.key, jsonSchema($0.value)) }))
                case ("items", _):
                    result[key] = jsonSchema(value)
                case ("anyOf", .array(let options)):
                    result[key] = .array(options.map(jsonSchema))
                default:
                    result[key] = value
                }
            }
            return .object(result)
        }

        private static func part(_ raw: JSONValue, path: String) throws(WireRequestError) -> JSONObject {
            guard case .object(let members) = raw else { throw .type(path, expected: "an object", got: raw) }
            return try camelCased(members, path: path)
        }

        private static func isText(_ part: ContentPart) -> Bool {
            if case .text = part { return true }
            return false
        }
    }
}
