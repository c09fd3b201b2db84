/// Anthropic Messages.
struct AnthropicRenderer: WireRenderer {
    func body(for answer: MockAnswer, in context: ResponseContext) -> String {
        let block: JSONText
        switch answer.content {
        case .text(let text, _):
            block = ["type": "text", "text": .string(text)]
        case .toolCall(let id, let name, let arguments):
            block = ["type": "tool_use", "id": .string(id), "name": .string(name), "input": .verbatim(arguments)]
        }
        let body: JSONText = [
            "id": .string(self.id(context)),
            "type": "message",
            "role": "assistant",
            "model": .string(context.model),
            "content": [block],
            "stop_reason": .string(self.stopReason(answer)),
            "stop_sequence": .null,
            "usage": ["input_tokens": .int(answer.promptTokens), "output_tokens": .int(answer.completionTokens)],
        ]
        return body.serialized
    }

    func stream(for answer: MockAnswer, in context: ResponseContext, finished: Bool) -> StreamEvents {
        let messageStart: JSONText = [
            "type": "message_start",
            "message": [
                "id": .string(self.id(context)),
                "type": "message",
                "role": "assistant",
                "model": .string(context.model),
                "content": [],
                "stop_reason": .null,
                "stop_sequence": .null,
                "usage": ["input_tokens": .int(answer.promptTokens), "output_tokens": 1],
            ],
        ]
        let contentBlock: JSONText
        let deltas: [JSONText]
        switch answer.content {
        case .text:
            contentBlock = ["type": "text", "text": ""]
            deltas = answer.streamPieces.map { ["type": "text_delta", "text": .string($0)] }
        case .toolCall(let id, let name, _):
            contentBlock = ["type": "tool_use", "id": .string(id), "name": .string(name), "input": [:]]
            deltas = answer.streamPieces.map { ["type": "input_json_delta", "partial_json": .string($0)] }
        }
        var events = StreamEvents(
            opening: [
                self.event("message_start", messageStart),
                self.event(
                    "content_block_start",
                    ["type": "content_block_start", "index": 0, "content_block": contentBlock]
                ),
                self.event("ping", ["type": "ping"]),
            ],
            content: deltas.map {
                self.event("content_block_delta", ["type": "content_block_delta", "index": 0, "delta": $0])
            },
            closing: []
        )
        guard finished else { return events }
        let messageDelta: JSONText = [
            "type": "message_delta",
            "delta": ["stop_reason": .string(self.stopReason(answer)), "stop_sequence": .null],
            "usage": ["output_tokens": .int(answer.completionTokens)],
        ]
        events.closing = [
            self.event("content_block_stop", ["type": "content_block_stop", "index": 0]),
            self.event("message_delta", messageDelta),
            self.event("message_stop", ["type": "message_stop"]),
        ]
        return events
    }

    func errorBody(for error: MockErrorSpec) -> String {
        self.errorJSON(error).serialized
    }

    func streamErrorEvent(for error: MockErrorSpec) -> String {
        self.event("error", self.errorJSON(error))
    }

    var malformedEvent: String {
        Self.dataEvent("{not json", named: "content_block_delta")
    }

    private func errorJSON(_ error: MockErrorSpec) -> JSONText {
        let type = error.type ?? ErrorCatalog.anthropicType(for: error.status)
        let message =
            error.message ?? (type == "overloaded_error" ? "Overloaded" : ErrorCatalog.message(for: error.status))
        return ["type": "error", "error": ["type": .string(type), "message": .string(message)]]
    }

    private func event(_ name: String, _ data: JSONText) -> String {
        Self.dataEvent(data.serialized, named: name)
    }

    private func id(_ context: ResponseContext) -> String {
        "msg_mock_\(context.responseID)"
    }

    private func stopReason(_ answer: MockAnswer) -> String {
        switch answer.openAIFinishReason {
        case "stop": "end_turn"
        case "length": "max_tokens"
        case "tool_calls": "tool_use"
        case "content_filter": "refusal"
        case let other: other
        }
    }
}
