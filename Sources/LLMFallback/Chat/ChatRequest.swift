/// The shape of the answer the model must produce.
public enum ResponseFormat: Hashable, Sendable {
    /// Free text (the default).
    case text
    /// Any JSON object.
    case jsonObject
    /// JSON matching a schema.
    case jsonSchema(name: String, schema: JSONValue, strict: Bool? = nil)
}

/// A provider-neutral chat request.
///
/// Every field but ``messages`` is optional; a field left `nil` is not sent, so the provider's default applies.
public struct ChatRequest: Hashable, Sendable {
    /// The conversation so far.
    public var messages: [Message]
    /// Sampling temperature.
    public var temperature: Double?
    /// Nucleus sampling.
    public var topP: Double?
    /// The most tokens to generate.
    public var maxTokens: Int?
    /// Sequences that end the answer.
    public var stop: [String]
    /// Functions the model may call.
    public var tools: [Tool]
    /// Whether and which tool the model must call.
    public var toolChoice: ToolChoice?
    /// Whether the model may call several tools at once (OpenAI).
    public var parallelToolCalls: Bool?
    /// JSON output.
    public var responseFormat: ResponseFormat?
    /// A seed for reproducible sampling, where supported.
    public var seed: Int?
    /// An end-user id for the provider's abuse monitoring.
    public var user: String?
    /// How hard a reasoning model thinks before it answers: OpenAI's `reasoning_effort`, Anthropic's extended
    /// thinking budget, Gemini's thinking budget or level.
    public var reasoningEffort: ReasoningEffort?
    /// Penalises tokens by how often they already appear (OpenAI, Gemini; −2 to 2).
    public var frequencyPenalty: Double?
    /// Penalises tokens that already appear at all (OpenAI, Gemini; −2 to 2).
    public var presencePenalty: Double?
    /// Whether to return the log probabilities of the output tokens (OpenAI, Gemini).
    public var logprobs: Bool?
    /// How many of the most likely tokens to return at each position, with ``logprobs`` (OpenAI, Gemini).
    public var topLogprobs: Int?
    /// Members merged into the body sent to providers of one wire format only, for what this model does not
    /// hold (`["reasoning": ["summary": "auto"]]` for OpenAI, `["top_k": 40]` for Anthropic). A member here
    /// replaces the one the adapter would write; providers of other formats never see it.
    public var extraBody: [WireFormat: JSONObject]
    /// The client's own body, when the request came through a gateway surface in a provider's wire format: a
    /// provider that speaks the same format receives it with only what the chain must change, so that every
    /// field this model does not hold survives. Set by the gateway; `nil` for requests built in code.
    public var passthrough: PassthroughBody?
    /// Whether the last message is the start of the assistant's answer, for the provider to continue rather than
    /// answer (an assistant prefill, written the provider's way: ``AssistantPrefill``). The chain sets it when it
    /// continues a stream that broke mid-answer.
    public var continuesFinalMessage = false

    /// Creates a request.
    public init(
        messages: [Message],
        temperature: Double? = nil,
        topP: Double? = nil,
        maxTokens: Int? = nil,
        stop: [String] = [],
        tools: [Tool] = [],
        toolChoice: ToolChoice? = nil,
        parallelToolCalls: Bool? = nil,
        responseFormat: ResponseFormat? = nil,
        seed: Int? = nil,
        user: String? = nil,
        reasoningEffort: ReasoningEffort? = nil,
        frequencyPenalty: Double? = nil,
        presencePenalty: Double? = nil,
        logprobs: Bool? = nil,
        topLogprobs: Int? = nil,
        extraBody: [WireFormat: JSONObject] = [:]
    ) {
        self.messages = messages
        self.temperature = temperature
        self.topP = topP
        self.maxTokens = maxTokens
        self.stop = stop
        self.tools = tools
        self.toolChoice = toolChoice
        self.parallelToolCalls = parallelToolCalls
        self.responseFormat = responseFormat
        self.seed = seed
        self.user = user
        self.reasoningEffort = reasoningEffort
        self.frequencyPenalty = frequencyPenalty
        self.presencePenalty = presencePenalty
        self.logprobs = logprobs
        self.topLogprobs = topLogprobs
        self.extraBody = extraBody
    }

    /// Whether the answer must be JSON: a ``responseFormat`` of JSON, or a passed-through body asking for one
    /// (Anthropic's `output_format`, `output_config.format`). Such an answer is never continued by another provider.
    var asksForStructuredOutput: Bool {
        switch responseFormat {
        case .jsonObject, .jsonSchema: return true
        case .text, .none: break
        }
        guard let passthrough else { return false }
        return passthrough.body["output_format"] != nil || passthrough.body["output_config"]?["format"] != nil
            || passthrough.body["response_format"]?["type"]?.stringValue.map { $0 != "text" } == true
    }

    /// A one-question request: an optional system message and the user's prompt.
    public init(prompt: String, system: String? = nil, temperature: Double? = nil, maxTokens: Int? = nil) {
        var messages: [Message] = []
        if let system { messages.append(.system(system)) }
        messages.append(.user(prompt))
        self.init(messages: messages, temperature: temperature, maxTokens: maxTokens)
    }
}

/// How hard a reasoning model thinks: OpenAI's `reasoning_effort` values, mapped by each adapter to what its API
/// has (an Anthropic thinking budget, a Gemini thinking budget or level).
public struct ReasoningEffort: RawRepresentable, Hashable, Sendable, ExpressibleByStringLiteral, CustomStringConvertible {
    /// The value as OpenAI spells it.
    public var rawValue: String

    public init(rawValue: String) { self.rawValue = rawValue }
    public init(stringLiteral value: String) { self.rawValue = value }

    /// No reasoning where the model allows it.
    public static let none: ReasoningEffort = "none"
    /// As little as the model allows.
    public static let minimal: ReasoningEffort = "minimal"
    public static let low: ReasoningEffort = "low"
    public static let medium: ReasoningEffort = "medium"
    public static let high: ReasoningEffort = "high"

    public var description: String { rawValue }

    /// A thinking budget in tokens for APIs that take one (Anthropic, Gemini 2.5); `nil` for no thinking.
    package var thinkingBudget: Int? {
        switch self {
        case .none: return nil
        case .minimal: return 1024
        case .low: return 2048
        case .medium: return 8192
        default: return 24576
        }
    }
}

/// A client's request body in its own wire format, kept by a gateway so that a provider of the same format
/// receives what the client sent (see ``ChatRequest/passthrough``).
public struct PassthroughBody: Hashable, Sendable {
    /// The format the body is written in.
    public var format: WireFormat
    /// The body's members, in the client's order, numbers exact.
    public var body: JSONObject
    /// The body's top-level members that the provider-neutral request does not hold: what a provider of another
    /// format cannot be sent (they are then reported as dropped).
    public var unmodelledKeys: [String]
    /// How many messages the body's conversation has: messages the chain appends (a continuation's prefill) are
    /// written after the client's own.
    public var messageCount: Int
    /// Whether the client's messages carry what only the chain may read (``ProviderState`` inside tool call ids):
    /// they are then written from the provider-neutral messages, so that the state reaches no other provider.
    public var messagesCarryProviderState: Bool
    /// What the body holds below its top level that the provider-neutral request does not carry (thinking blocks,
    /// `cache_control`, server tools): reported as dropped, with ``unmodelledKeys``, by a provider of another format.
    public var unmappedContent: [String]
    /// The client's request headers that belong to the format and travel with the body to a provider of the same
    /// format, by lowercased name (Anthropic's `anthropic-version` and `anthropic-beta`). Never a key.
    public var headers: [String: String]

    /// Creates a passthrough body.
    public init(
        format: WireFormat,
        body: JSONObject,
        unmodelledKeys: [String],
        messageCount: Int,
        messagesCarryProviderState: Bool = false,
        unmappedContent: [String] = [],
        headers: [String: String] = [:]
    ) {
        self.format = format
        self.body = body
        self.unmodelledKeys = unmodelledKeys
        self.messageCount = messageCount
        self.messagesCarryProviderState = messagesCarryProviderState
        self.unmappedContent = unmappedContent
        self.headers = headers
    }

    /// What a provider of another format cannot be sent: the unmodelled top-level members, then the nested content.
    public var droppedAcrossFormats: [String] {
        unmappedContent.isEmpty ? unmodelledKeys : unmodelledKeys + unmappedContent
    }
}
