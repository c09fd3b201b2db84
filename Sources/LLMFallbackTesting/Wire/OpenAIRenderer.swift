import LLMFallback
import NIOCore

/// OpenAI Chat Completions (also spoken by Azure OpenAI), rendered by the library's server half
/// (``OpenAIChatServer``): the mock answers exactly as the gateway does.
struct OpenAIRenderer: WireRenderer {
    private static let created = 1_700_000_000

    func body(for answer: MockAnswer, in context: ResponseContext) -> String {
        var buffer = ByteBuffer()
        OpenAIChatServer.writeResponse(self.response(answer, context), id: self.id(context), created: Self.created, into: &buffer)
        return String(buffer: buffer)
    }

    func stream(for answer: MockAnswer, in context: ResponseContext, finished: Bool) -> StreamEvents {
        var encoder = OpenAIChatServer.StreamEncoder(
            id: self.id(context), created: Self.created, model: context.model, includeUsage: context.includeUsage)
        func event(_ chunk: ChatChunk) -> String {
            var buffer = ByteBuffer()
            encoder.write(chunk, into: &buffer)
            return String(buffer: buffer)
        }
        var events = StreamEvents(opening: [], content: [], closing: [])
        switch answer.content {
        case .text:
            events.content = answer.streamPieces.map { event(ChatChunk(content: $0, model: context.model)) }
        case .toolCall(let id, let name, _):
            events.opening.append(event(ChatChunk(toolCallDeltas: [ToolCallDelta(index: 0, id: id, name: name)], model: context.model)))
            events.content = answer.streamPieces.map {
                event(ChatChunk(toolCallDeltas: [ToolCallDelta(index: 0, arguments: $0)], model: context.model))
            }
        }
        guard finished else { return events }
        events.closing.append(event(ChatChunk(finishReason: .other(answer.openAIFinishReason), usage: self.usage(answer), model: context.model)))
        var end = ByteBuffer()
        encoder.writeEnd(into: &end)
        events.closing.append(String(buffer: end))
        return events
    }

    func errorBody(for error: MockErrorSpec) -> String {
        var buffer = ByteBuffer()
        OpenAIChatServer.writeError(
            message: error.message ?? ErrorCatalog.message(for: error.status),
            type: error.type ?? ErrorCatalog.openAIType(for: error.status),
            code: error.code ?? ErrorCatalog.openAICode(for: error.status),
            into: &buffer)
        return String(buffer: buffer)
    }

    func streamErrorEvent(for error: MockErrorSpec) -> String {
        var buffer = ByteBuffer()
        OpenAIChatServer.StreamEncoder.writeErrorEvent(
            message: error.message ?? ErrorCatalog.message(for: error.status),
            type: error.type ?? ErrorCatalog.openAIType(for: error.status),
            code: error.code,
            into: &buffer)
        return String(buffer: buffer)
    }

    var malformedEvent: String {
        Self.dataEvent("{not json")
    }

    private func id(_ context: ResponseContext) -> String {
        "chatcmpl-mock-\(context.responseID)"
    }

    private func usage(_ answer: MockAnswer) -> Usage {
        Usage(promptTokens: answer.promptTokens, completionTokens: answer.completionTokens)
    }

    private func response(_ answer: MockAnswer, _ context: ResponseContext) -> ChatResponse {
        var response = ChatResponse(content: "", provider: "mock", model: context.model)
        switch answer.content {
        case .text(let text, _):
            response.content = text
        case .toolCall(let id, let name, let arguments):
            response.toolCalls = [ToolCall(id: id, name: name, arguments: arguments)]
        }
        response.finishReason = .other(answer.openAIFinishReason)
        response.usage = self.usage(answer)
        return response
    }
}
