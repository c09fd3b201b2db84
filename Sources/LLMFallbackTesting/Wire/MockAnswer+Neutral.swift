import LLMFallback

/// A scripted answer in the library's provider-neutral terms, for the renderers that write it through a wire
/// format's server half.
extension MockAnswer {
    /// The answer as a whole response.
    func response(model: String) -> ChatResponse {
        var response = ChatResponse(content: "", finishReason: self.finish, usage: self.neutralUsage, provider: "mock", model: model)
        switch self.content {
        case .text(let text, _):
            response.content = text
        case .toolCall(let id, let name, let arguments):
            response.toolCalls = [ToolCall(id: id, name: name, arguments: arguments)]
        }
        return response
    }

    /// The answer as stream chunks, one per piece (text pieces, or fragments of the call's arguments, the first
    /// fragment with the call's id and name), without a finish reason.
    var streamChunks: [ChatChunk] {
        switch self.content {
        case .text:
            return self.streamPieces.map { ChatChunk(content: $0) }
        case .toolCall(let id, let name, _):
            return self.streamPieces.enumerated().map { offset, piece in
                ChatChunk(
                    toolCallDeltas: [
                        offset == 0
                            ? ToolCallDelta(index: 0, id: id, name: name, arguments: piece)
                            : ToolCallDelta(index: 0, arguments: piece)
                    ]
                )
            }
        }
    }

    /// The finish reason, from OpenAI's words (`stop`, `length`, `tool_calls`, `content_filter`; others verbatim).
    var finish: FinishReason {
        switch self.openAIFinishReason {
        case "stop": .stop
        case "length": .length
        case "tool_calls": .toolCalls
        case "content_filter": .contentFilter
        case let other: .other(other)
        }
    }

    /// The token counts to report.
    var neutralUsage: Usage {
        Usage(promptTokens: self.promptTokens, completionTokens: self.completionTokens)
    }
}
