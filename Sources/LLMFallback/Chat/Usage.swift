/// Token counts a provider reported for one response.
public struct Usage: Hashable, Sendable, Codable {
    /// Tokens in the prompt.
    public var promptTokens: Int
    /// Tokens in the answer.
    public var completionTokens: Int
    /// Prompt and answer together.
    public var totalTokens: Int
    /// Prompt tokens served from the provider's cache, where reported.
    public var cachedTokens: Int?
    /// Tokens spent on hidden reasoning, where reported.
    public var reasoningTokens: Int?

    /// Creates a usage record; `totalTokens` defaults to the sum.
    ///
    /// The counts come from a provider, so they are taken with bounds: a negative count is zero, and the sum
    /// saturates at `Int.max` instead of overflowing.
    public init(promptTokens: Int, completionTokens: Int, totalTokens: Int? = nil, cachedTokens: Int? = nil, reasoningTokens: Int? = nil) {
        self.promptTokens = max(0, promptTokens)
        self.completionTokens = max(0, completionTokens)
        self.totalTokens = totalTokens.map { max(0, $0) } ?? self.promptTokens.saturatingAdd(self.completionTokens)
        self.cachedTokens = cachedTokens.map { max(0, $0) }
        self.reasoningTokens = reasoningTokens.map { max(0, $0) }
    }

    /// The counts of two responses together (saturating): what a stream finished by a second provider was billed.
    public func adding(_ other: Usage) -> Usage {
        func sum(_ a: Int?, _ b: Int?) -> Int? {
            guard a != nil || b != nil else { return nil }
            return (a ?? 0).saturatingAdd(b ?? 0)
        }
        return Usage(
            promptTokens: promptTokens.saturatingAdd(other.promptTokens),
            completionTokens: completionTokens.saturatingAdd(other.completionTokens),
            totalTokens: totalTokens.saturatingAdd(other.totalTokens),
            cachedTokens: sum(cachedTokens, other.cachedTokens),
            reasoningTokens: sum(reasoningTokens, other.reasoningTokens)
        )
    }
}

/// Why the model stopped.
public enum FinishReason: Hashable, Sendable, CustomStringConvertible {
    /// A natural end or a stop sequence.
    case stop
    /// The token limit was reached.
    case length
    /// The model called tools.
    case toolCalls
    /// A safety or content filter stopped the answer.
    case contentFilter
    /// Anything else, with the provider's raw value.
    case other(String)

    public var description: String {
        switch self {
        case .stop: return "stop"
        case .length: return "length"
        case .toolCalls: return "tool_calls"
        case .contentFilter: return "content_filter"
        case .other(let raw): return raw
        }
    }

    /// The reason in OpenAI's spelling (`stop`, `length`, `tool_calls`, `content_filter`).
    public var openAIValue: String { description }
}
