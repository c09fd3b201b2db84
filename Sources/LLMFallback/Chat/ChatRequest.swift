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
        user: String? = nil
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
    }

    /// A one-question request: an optional system message and the user's prompt.
    public init(prompt: String, system: String? = nil, temperature: Double? = nil, maxTokens: Int? = nil) {
        var messages: [Message] = []
        if let system { messages.append(.system(system)) }
        messages.append(.user(prompt))
        self.init(messages: messages, temperature: temperature, maxTokens: maxTokens)
    }
}
