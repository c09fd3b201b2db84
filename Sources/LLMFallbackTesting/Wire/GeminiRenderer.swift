import LLMFallback
import NIOCore

/// Google Gemini `generateContent` and `streamGenerateContent?alt=sse`, rendered by the library's server half
/// (``GeminiGenerateServer``).
///
/// Gemini's Server-Sent Events end their lines with CRLF, and its stream has no separate terminator: the last
/// chunk carries `finishReason` and `usageMetadata`. Function calls carry no id, as Gemini's own do not.
struct GeminiRenderer: WireRenderer {
    func body(for answer: MockAnswer, in context: ResponseContext) -> String {
        let body = GeminiGenerateServer.encodeResponse(
            answer.response(model: context.model), id: self.id(context), model: context.model, includeCallIDs: false)
        return String(buffer: body)
    }

    func stream(for answer: MockAnswer, in context: ResponseContext, finished: Bool) -> StreamEvents {
        var encoder = GeminiGenerateServer.StreamEncoder(id: self.id(context), model: context.model, includeCallIDs: false)
        var chunks: [ChatChunk]
        switch answer.content {
        case .text:
            chunks = answer.streamChunks
        case .toolCall(let id, let name, let arguments):
            // Gemini does not split calls: the whole call in one chunk.
            chunks = [ChatChunk(toolCallDeltas: [ToolCallDelta(index: 0, id: id, name: name, arguments: arguments)])]
        }
        if finished, !chunks.isEmpty {
            chunks[chunks.count - 1].finishReason = answer.finish
            chunks[chunks.count - 1].usage = answer.neutralUsage
        }
        var content: [String] = []
        for chunk in chunks { content += encoder.encode(chunk) }
        return StreamEvents(opening: [], content: content, closing: [])
    }

    func errorBody(for error: MockErrorSpec) -> String {
        let (code, message, status) = self.error(error)
        return String(buffer: GeminiGenerateServer.encodeError(code: code, message: message, status: status))
    }

    func streamErrorEvent(for error: MockErrorSpec) -> String {
        let (code, message, status) = self.error(error)
        return GeminiGenerateServer.StreamEncoder.errorEvent(code: code, message: message, status: status)
    }

    var malformedEvent: String {
        "data: {not json\r\n\r\n"
    }

    private func error(_ error: MockErrorSpec) -> (code: Int, message: String, status: String) {
        (
            error.status, error.message ?? ErrorCatalog.message(for: error.status),
            error.type ?? GeminiGenerateServer.status(forHTTPStatus: error.status)
        )
    }

    private func id(_ context: ResponseContext) -> String {
        "mock-\(context.responseID)"
    }
}
