import Foundation

/// How a provider's API takes the start of an answer to continue (an assistant prefill), which is how the chain
/// finishes a stream that broke after part of the answer reached the caller (``MidStreamPolicy/continue``).
///
/// The chain sends the delivered text as the request's last message, an assistant message, and sets
/// ``ChatRequest/continuesFinalMessage``; the adapter writes it the way the provider understands:
///
/// - ``trailingMessage``: a final assistant message is continued as it stands (Anthropic's models before Claude 4.6,
///   Gemini's trailing `model` turn, llama.cpp-based servers; OpenRouter for the models it routes to that do).
/// - ``prefixFlag``: the final assistant message carries `"prefix": true` (Mistral, DeepSeek's beta endpoint).
/// - ``continueFinalMessage``: the body carries `"continue_final_message": true` and
///   `"add_generation_prompt": false` (vLLM, SGLang).
/// - ``unsupported``: the API does not continue a partial answer (the official OpenAI API, which answers a final
///   assistant message with a new one); the chain then never sends it one.
///
/// ```swift
/// var vllm = Provider("vllm", model: "qwen", baseURL: "http://gpu:8000/v1")
/// vllm.prefill = true      // the kind's way (continue_final_message); false never prefills
/// ```
public struct AssistantPrefill: Hashable, Sendable, CustomStringConvertible {
    enum Base: Hashable, Sendable { case unsupported, trailingMessage, prefixFlag, continueFinalMessage }
    let base: Base

    /// The API does not continue a partial answer.
    public static let unsupported = AssistantPrefill(base: .unsupported)
    /// A final assistant message is continued as it stands.
    public static let trailingMessage = AssistantPrefill(base: .trailingMessage)
    /// The final assistant message carries `"prefix": true` (Mistral, DeepSeek).
    public static let prefixFlag = AssistantPrefill(base: .prefixFlag)
    /// The body carries `"continue_final_message": true, "add_generation_prompt": false` (vLLM).
    public static let continueFinalMessage = AssistantPrefill(base: .continueFinalMessage)

    /// Whether a partial answer can be continued this way.
    public var isSupported: Bool { base != .unsupported }

    public var description: String {
        switch base {
        case .unsupported: return "unsupported"
        case .trailingMessage: return "trailing message"
        case .prefixFlag: return "prefix flag"
        case .continueFinalMessage: return "continue_final_message"
        }
    }
}

extension ProviderKind {
    /// Whether this kind continues a partial answer for `model` without being told to: the kind's
    /// ``supportsAssistantPrefill``, except for models known to refuse one: Anthropic's from Claude 4.6 on
    /// (`400`: "This model does not support assistant message prefill") and those whose name does not say their
    /// version, and Gemini's 3.6 Flash and 3.5 Flash-Lite ("Requests ending with a model turn are not supported").
    /// A provider's ``Provider/prefill`` overrides this; a provider that refuses a prefill anyway is not asked again
    /// by that chain.
    public func prefillsByDefault(model: String) -> Bool {
        guard supportsAssistantPrefill else { return false }
        let lowered = model.lowercased()
        if wireFormat == .gemini {
            return !Self.geminiModelsWithoutPrefill.contains { lowered.contains($0) }
        }
        guard wireFormat == .anthropic else { return true }
        guard let version = Self.claudeVersion(lowered) else { return false }
        return version.major < 4 || (version.major == 4 && version.minor < 6)
    }

    static let geminiModelsWithoutPrefill = ["gemini-3.6-flash", "gemini-3.5-flash-lite", "flash-lite-latest"]

    /// The version in a Claude model's name: `claude-3-5-sonnet-20241022` (3.5), `claude-opus-4-20250514` (4.0),
    /// `claude-sonnet-4-5` (4.5), `us.anthropic.claude-opus-4-6-v1` (4.6), `claude-sonnet-4@20250514` (4.0); `nil` for a
    /// name without one.
    static func claudeVersion(_ model: String) -> (major: Int, minor: Int)? {
        // Vertex AI names a version after an @ (claude-sonnet-4@20250514).
        let lowered = model.lowercased().split(separator: "@").first.map(String.init) ?? ""
        guard let range = lowered.range(of: "claude-") else { return nil }
        var numbers: [Int] = []
        for part in lowered[range.upperBound...].split(separator: "-") {
            // A dated suffix (20250514) or a revision (v1) ends the version.
            guard let number = Int(part), part.count <= 2 else {
                if !numbers.isEmpty { break }
                continue
            }
            numbers.append(number)
            if numbers.count == 2 { break }
        }
        guard let major = numbers.first else { return nil }
        return (major, numbers.count > 1 ? numbers[1] : 0)
    }
}

extension ResolvedProvider {
    /// How this provider is asked to continue a partial answer: the kind's way when ``Provider/prefill`` is
    /// `true`, or when it is `nil` and the kind continues this model's answers by default
    /// (``ProviderKind/prefillsByDefault(model:)``); ``AssistantPrefill/unsupported`` otherwise. A provider told
    /// `prefill: true` whose kind has no way of its own gets ``AssistantPrefill/trailingMessage``.
    public var assistantPrefill: AssistantPrefill {
        let enabled = provider.prefill ?? kind.prefillsByDefault(model: provider.model)
        guard enabled else { return .unsupported }
        return kind.assistantPrefill.isSupported ? kind.assistantPrefill : .trailingMessage
    }
}
