/// Google Gemini `generateContent` and `streamGenerateContent?alt=sse`.
///
/// Gemini's Server-Sent Events end their lines with CRLF, and its stream has no separate terminator: the last
/// chunk carries `finishReason` and `usageMetadata`.
struct GeminiRenderer: WireRenderer {
    func body(for answer: MockAnswer, in context: ResponseContext) -> String {
        let part: JSONText
        switch answer.content {
        case .text(let text, _):
            part = ["text": .string(text)]
        case .toolCall(_, let name, let arguments):
            part = self.functionCallPart(name: name, arguments: arguments)
        }
        return self.response(parts: [part], finishReason: self.finishReason(answer), answer: answer, context).serialized
    }

    func stream(for answer: MockAnswer, in context: ResponseContext, finished: Bool) -> StreamEvents {
        let parts: [JSONText]
        switch answer.content {
        case .text:
            parts = answer.streamPieces.map { ["text": .string($0)] }
        case .toolCall(_, let name, let arguments):
            parts = [self.functionCallPart(name: name, arguments: arguments)]
        }
        let content = parts.enumerated().map { index, part in
            let isLast = finished && index == parts.count - 1
            let chunk = self.response(
                parts: [part],
                finishReason: isLast ? self.finishReason(answer) : nil,
                answer: isLast ? answer : nil,
                context
            )
            return self.event(chunk.serialized)
        }
        return StreamEvents(opening: [], content: content, closing: [])
    }

    func errorBody(for error: MockErrorSpec) -> String {
        self.errorJSON(error).serialized
    }

    func streamErrorEvent(for error: MockErrorSpec) -> String {
        self.event(self.errorJSON(error).serialized)
    }

    var malformedEvent: String {
        self.event("{not json")
    }

    /// A response or stream chunk; `answer` adds `usageMetadata` (non-streamed bodies and the last chunk).
    private func response(
        parts: [JSONText],
        finishReason: String?,
        answer: MockAnswer?,
        _ context: ResponseContext
    ) -> JSONText {
        var candidate: [(key: String, value: JSONText)] = [("content", ["role": "model", "parts": .array(parts)])]
        if let finishReason {
            candidate.append(("finishReason", .string(finishReason)))
        }
        candidate.append(("index", 0))
        var response: [(key: String, value: JSONText)] = [("candidates", [.object(candidate)])]
        if let answer {
            response.append(
                (
                    "usageMetadata",
                    [
                        "promptTokenCount": .int(answer.promptTokens),
                        "candidatesTokenCount": .int(answer.completionTokens),
                        "totalTokenCount": .int(answer.promptTokens + answer.completionTokens),
                    ]
                )
            )
        }
        response.append(("modelVersion", .string(context.model)))
        response.append(("responseId", .string("mock-\(context.responseID)")))
        return .object(response)
    }

    private func functionCallPart(name: String, arguments: String) -> JSONText {
        ["functionCall": ["name": .string(name), "args": .verbatim(arguments)]]
    }

    private func errorJSON(_ error: MockErrorSpec) -> JSONText {
        [
            "error": [
                "code": .int(error.status),
                "message": .string(error.message ?? ErrorCatalog.message(for: error.status)),
                "status": .string(error.type ?? ErrorCatalog.geminiStatus(for: error.status)),
            ]
        ]
    }

    private func event(_ data: String) -> String {
        "data: \(data)\r\n\r\n"
    }

    private func finishReason(_ answer: MockAnswer) -> String {
        switch answer.openAIFinishReason {
        case "stop", "tool_calls": "STOP"
        case "length": "MAX_TOKENS"
        case "content_filter": "SAFETY"
        case let other: other
        }
    }
}
