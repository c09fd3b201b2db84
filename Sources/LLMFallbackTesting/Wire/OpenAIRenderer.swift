/// OpenAI Chat Completions (also spoken by Azure OpenAI).
struct OpenAIRenderer: WireRenderer {
    private static let created = 1_700_000_000

    func body(for answer: MockAnswer, in context: ResponseContext) -> String {
        var message: [(key: String, value: JSONText)] = [("role", "assistant")]
        switch answer.content {
        case .text(let text, _):
            message.append(("content", .string(text)))
        case .toolCall(let id, let name, let arguments):
            message.append(("content", .null))
            message.append(
                (
                    "tool_calls",
                    [
                        [
                            "id": .string(id), "type": "function",
                            "function": ["name": .string(name), "arguments": .string(arguments)],
                        ]
                    ]
                )
            )
        }
        let body: JSONText = [
            "id": .string(self.id(context)),
            "object": "chat.completion",
            "created": .int(Self.created),
            "model": .string(context.model),
            "choices": [
                [
                    "index": 0,
                    "message": .object(message),
                    "finish_reason": .string(answer.openAIFinishReason),
                ]
            ],
            "usage": self.usage(answer),
        ]
        return body.serialized
    }

    func stream(for answer: MockAnswer, in context: ResponseContext, finished: Bool) -> StreamEvents {
        var events = StreamEvents(opening: [], content: [], closing: [])
        switch answer.content {
        case .text:
            for (index, piece) in answer.streamPieces.enumerated() {
                let delta: JSONText =
                    index == 0 ? ["role": "assistant", "content": .string(piece)] : ["content": .string(piece)]
                events.content.append(self.chunk(delta: delta, context))
            }
        case .toolCall(let id, let name, _):
            let header: JSONText = [
                "role": "assistant",
                "content": .null,
                "tool_calls": [
                    [
                        "index": 0, "id": .string(id), "type": "function",
                        "function": ["name": .string(name), "arguments": ""],
                    ]
                ],
            ]
            events.opening.append(self.chunk(delta: header, context))
            for fragment in answer.streamPieces {
                let delta: JSONText = ["tool_calls": [["index": 0, "function": ["arguments": .string(fragment)]]]]
                events.content.append(self.chunk(delta: delta, context))
            }
        }
        guard finished else { return events }
        events.closing.append(self.chunk(delta: [:], finishReason: answer.openAIFinishReason, context))
        if context.includeUsage {
            let usageChunk: JSONText = [
                "id": .string(self.id(context)),
                "object": "chat.completion.chunk",
                "created": .int(Self.created),
                "model": .string(context.model),
                "choices": [],
                "usage": self.usage(answer),
            ]
            events.closing.append(Self.dataEvent(usageChunk.serialized))
        }
        events.closing.append(Self.dataEvent("[DONE]"))
        return events
    }

    func errorBody(for error: MockErrorSpec) -> String {
        let body: JSONText = [
            "error": self.errorObject(error, code: error.code ?? ErrorCatalog.openAICode(for: error.status))
        ]
        return body.serialized
    }

    func streamErrorEvent(for error: MockErrorSpec) -> String {
        let body: JSONText = ["error": self.errorObject(error, code: error.code)]
        return Self.dataEvent(body.serialized)
    }

    var malformedEvent: String {
        Self.dataEvent("{not json")
    }

    private func errorObject(_ error: MockErrorSpec, code: String?) -> JSONText {
        [
            "message": .string(error.message ?? ErrorCatalog.message(for: error.status)),
            "type": .string(error.type ?? ErrorCatalog.openAIType(for: error.status)),
            "param": .null,
            "code": .string(code),
        ]
    }

    private func id(_ context: ResponseContext) -> String {
        "chatcmpl-mock-\(context.responseID)"
    }

    private func usage(_ answer: MockAnswer) -> JSONText {
        [
            "prompt_tokens": .int(answer.promptTokens),
            "completion_tokens": .int(answer.completionTokens),
            "total_tokens": .int(answer.promptTokens + answer.completionTokens),
        ]
    }

    private func chunk(delta: JSONText, finishReason: String? = nil, _ context: ResponseContext) -> String {
        let chunk: JSONText = [
            "id": .string(self.id(context)),
            "object": "chat.completion.chunk",
            "created": .int(Self.created),
            "model": .string(context.model),
            "choices": [["index": 0, "delta": delta, "finish_reason": .string(finishReason)]],
        ]
        return Self.dataEvent(chunk.serialized)
    }
}
