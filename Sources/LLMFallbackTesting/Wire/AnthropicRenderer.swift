import LLMFallback
import NIOCore

/// Anthropic Messages, rendered by the library's server half (``AnthropicMessagesServer``).
struct AnthropicRenderer: WireRenderer {
    func body(for answer: MockAnswer, in context: ResponseContext) -> String {
        let body = AnthropicMessagesServer.encodeResponse(answer.response(model: context.model), id: self.id(context), model: context.model)
        return String(buffer: body)
    }

    func stream(for answer: MockAnswer, in context: ResponseContext, finished: Bool) -> StreamEvents {
        var encoder = AnthropicMessagesServer.StreamEncoder(
            id: self.id(context), model: context.model, inputTokens: answer.promptTokens)
        var events = StreamEvents(opening: encoder.start(), content: [], closing: [])
        // Everything before the first delta (the first content_block_start) opens the stream, then a ping, as
        // Anthropic sends one; each delta is a content event.
        for chunk in answer.streamChunks {
            for event in encoder.encode(chunk) {
                if event.hasPrefix("event: content_block_delta\n") || !events.content.isEmpty {
                    events.content.append(event)
                } else {
                    events.opening.append(event)
                }
            }
        }
        events.opening.append(AnthropicMessagesServer.StreamEncoder.pingEvent)
        guard finished else { return events }
        events.closing = encoder.finish(finishReason: answer.finish, usage: answer.neutralUsage)
        return events
    }

    func errorBody(for error: MockErrorSpec) -> String {
        let (type, message) = self.error(error)
        return String(buffer: AnthropicMessagesServer.encodeError(type: type, message: message))
    }

    func streamErrorEvent(for error: MockErrorSpec) -> String {
        let (type, message) = self.error(error)
        return AnthropicMessagesServer.StreamEncoder.errorEvent(type: type, message: message)
    }

    var malformedEvent: String {
        Self.dataEvent("{not json", named: "content_block_delta")
    }

    private func error(_ error: MockErrorSpec) -> (type: String, message: String) {
        let type = error.type ?? AnthropicMessagesServer.errorType(forStatus: error.status)
        let message =
            error.message ?? (type == "overloaded_error" ? "Overloaded" : ErrorCatalog.message(for: error.status))
        return (type, message)
    }

    private func id(_ context: ResponseContext) -> String {
        "msg_mock_\(context.responseID)"
    }
}
