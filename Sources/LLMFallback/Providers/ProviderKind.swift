/// The HTTP API a provider speaks.
public struct WireFormat: Hashable, Sendable, CustomStringConvertible {
    fileprivate enum Base: String, Hashable, Sendable {
        case openAI = "openai"
        case azureOpenAI = "azure"
        case anthropic
        case gemini
    }
    fileprivate let base: Base

    /// OpenAI Chat Completions (`POST {base}/chat/completions`), also spoken by OpenAI-compatible servers.
    public static let openAI = WireFormat(base: .openAI)
    /// Azure OpenAI (`POST {base}/openai/deployments/{model}/chat/completions?api-version=...`).
    public static let azureOpenAI = WireFormat(base: .azureOpenAI)
    /// Anthropic Messages (`POST {base}/v1/messages`).
    public static let anthropic = WireFormat(base: .anthropic)
    /// Gemini generateContent (`POST {base}/v1beta/models/{model}:generateContent`).
    public static let gemini = WireFormat(base: .gemini)

    public var description: String { base.rawValue }

    /// Whether the format's requests are OpenAI Chat Completions bodies (OpenAI and Azure OpenAI).
    public var speaksOpenAIChat: Bool { base == .openAI || base == .azureOpenAI }
}

/// What a provider kind name means: its wire format, default base URL and key variable.
///
/// ```swift
/// ProviderKind.named("groq")?.defaultBaseURL   // "https://api.groq.com/openai/v1"
/// ```
public struct ProviderKind: Hashable, Sendable {
    /// How the token limit is spelled in an OpenAI-format request.
    public enum MaxTokensField: Hashable, Sendable {
        /// `max_completion_tokens`, OpenAI's current name.
        case maxCompletionTokens
        /// `max_tokens`, the name OpenAI-compatible servers know.
        case maxTokens
    }

    /// The kind's name, as written in `Provider("name", ...)`.
    public var name: String
    /// The API it speaks.
    public var wireFormat: WireFormat
    /// The base URL used when the provider gives none.
    public var defaultBaseURL: String?
    /// Environment variables read, in order, for the key when the provider gives none.
    public var apiKeyVariables: [String]
    /// Whether a request without a key is a configuration error (local servers need none).
    public var requiresAPIKey: Bool
    /// How an OpenAI-format request spells the token limit.
    public var maxTokensField: MaxTokensField
    /// Whether the chain continues a partial answer on this kind by default (assistant prefill), to finish a stream
    /// that broke mid-answer; per model, see ``prefillsByDefault(model:)``, and ``Provider/prefill`` overrides it.
    public var supportsAssistantPrefill: Bool
    /// How this kind's API takes a partial answer to continue, when it is asked to (``AssistantPrefill``).
    public var assistantPrefill: AssistantPrefill

    /// Creates a kind.
    public init(
        name: String,
        wireFormat: WireFormat,
        defaultBaseURL: String?,
        apiKeyVariables: [String],
        requiresAPIKey: Bool = true,
        maxTokensField: MaxTokensField = .maxTokens,
        supportsAssistantPrefill: Bool = false,
        assistantPrefill: AssistantPrefill? = nil
    ) {
        self.name = name
        self.wireFormat = wireFormat
        self.defaultBaseURL = defaultBaseURL
        self.apiKeyVariables = apiKeyVariables
        self.requiresAPIKey = requiresAPIKey
        self.maxTokensField = maxTokensField
        self.supportsAssistantPrefill = supportsAssistantPrefill
        // A kind that prefills by default and names no way of its own continues a trailing assistant message.
        self.assistantPrefill = assistantPrefill ?? (supportsAssistantPrefill ? .trailingMessage : .unsupported)
    }

    private static func compatible(
        _ name: String, _ url: String, _ variable: String?, prefill: Bool = false, style: AssistantPrefill? = nil
    ) -> ProviderKind {
        ProviderKind(
            name: name,
            wireFormat: .openAI,
            defaultBaseURL: url,
            apiKeyVariables: variable.map { [$0] } ?? [],
            requiresAPIKey: variable != nil,
            supportsAssistantPrefill: prefill,
            assistantPrefill: style
        )
    }

    /// The kinds known by name. Any other name with a base URL is treated as OpenAI-compatible.
    public static let known: [String: ProviderKind] = {
        let kinds: [ProviderKind] = [
            ProviderKind(
                name: "openai",
                wireFormat: .openAI,
                defaultBaseURL: "https://api.openai.com/v1",
                apiKeyVariables: ["OPENAI_API_KEY"],
                maxTokensField: .maxCompletionTokens
            ),
            ProviderKind(
                name: "azure",
                wireFormat: .azureOpenAI,
                defaultBaseURL: nil,
                apiKeyVariables: ["AZURE_OPENAI_API_KEY"],
                maxTokensField: .maxCompletionTokens
            ),
            ProviderKind(
                name: "anthropic",
                wireFormat: .anthropic,
                defaultBaseURL: "https://api.anthropic.com",
                apiKeyVariables: ["ANTHROPIC_API_KEY"],
                supportsAssistantPrefill: true
            ),
            ProviderKind(
                name: "google",
                wireFormat: .gemini,
                defaultBaseURL: "https://generativelanguage.googleapis.com",
                apiKeyVariables: ["GEMINI_API_KEY", "GOOGLE_API_KEY"],
                supportsAssistantPrefill: true
            ),
            compatible("groq", "https://api.groq.com/openai/v1", "GROQ_API_KEY"),
            compatible("together", "https://api.together.xyz/v1", "TOGETHER_API_KEY"),
            compatible("mistral", "https://api.mistral.ai/v1", "MISTRAL_API_KEY", prefill: true, style: .prefixFlag),
            // DeepSeek continues a prefix only on its beta endpoint (https://api.deepseek.com/beta): prefill: true there.
            compatible("deepseek", "https://api.deepseek.com/v1", "DEEPSEEK_API_KEY", style: .prefixFlag),
            // OpenRouter passes a trailing assistant message on to the model it routes to, which may answer afresh
            // (an OpenAI model does): off unless a provider says prefill: true for a model that continues.
            compatible("openrouter", "https://openrouter.ai/api/v1", "OPENROUTER_API_KEY", style: .trailingMessage),
            compatible("fireworks", "https://api.fireworks.ai/inference/v1", "FIREWORKS_API_KEY"),
            compatible("xai", "https://api.x.ai/v1", "XAI_API_KEY"),
            compatible("perplexity", "https://api.perplexity.ai", "PERPLEXITY_API_KEY"),
            compatible("cerebras", "https://api.cerebras.ai/v1", "CEREBRAS_API_KEY"),
            compatible("ollama", "http://localhost:11434/v1", nil),
            compatible("vllm", "http://localhost:8000/v1", nil, prefill: true, style: .continueFinalMessage),
            compatible("lmstudio", "http://localhost:1234/v1", nil),
        ]
        var table = Dictionary(uniqueKeysWithValues: kinds.map { ($0.name, $0) })
        table["gemini"] = table["google"]
        table["azure-openai"] = table["azure"]
        return table
    }()

    /// The kind called `name` (case-insensitive), or `nil` when the name is unknown.
    public static func named(_ name: String) -> ProviderKind? {
        known[name.lowercased()]
    }

    /// The kind an unknown name with a base URL stands for: OpenAI-compatible, key optional.
    public static func openAICompatible(named name: String) -> ProviderKind {
        ProviderKind(
            name: name,
            wireFormat: .openAI,
            defaultBaseURL: nil,
            apiKeyVariables: [],
            requiresAPIKey: false
        )
    }
}
