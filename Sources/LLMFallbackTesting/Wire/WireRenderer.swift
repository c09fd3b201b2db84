/// What a renderer needs to know about the request it answers.
struct ResponseContext: Sendable {
    /// The model the request asked for, echoed in the answer.
    var model: String
    /// A number unique to this response, used in ids such as `chatcmpl-mock-7`.
    var responseID: Int
    /// Whether an OpenAI stream should end with a usage chunk (`"stream_options":{"include_usage":true}`).
    var includeUsage: Bool
}

/// The framed Server-Sent Events of one streamed answer.
struct StreamEvents: Sendable {
    /// Events before the first content chunk, such as Anthropic's `message_start`.
    var opening: [String]
    /// One event per text piece or argument fragment.
    var content: [String]
    /// Events after the content, ending with the format's terminator; empty for an unfinished stream.
    var closing: [String]
}

/// Renders answers and errors in one provider's wire format.
protocol WireRenderer: Sendable {
    /// The complete non-streamed JSON body of `answer`.
    func body(for answer: MockAnswer, in context: ResponseContext) -> String

    /// The events of a streamed `answer`.
    ///
    /// When `finished` is `false` the stream stops after its content: no closing events, and no content event
    /// carries a finish reason.
    func stream(for answer: MockAnswer, in context: ResponseContext, finished: Bool) -> StreamEvents

    /// The JSON body of an error response.
    func errorBody(for error: MockErrorSpec) -> String

    /// An error event sent inside a `200` stream.
    func streamErrorEvent(for error: MockErrorSpec) -> String

    /// An event whose data is not JSON, framed like the format's other events.
    var malformedEvent: String { get }
}

extension WireRenderer {
    /// A `data:` event with LF line ends, as OpenAI and Anthropic send.
    static func dataEvent(_ data: String, named name: String? = nil) -> String {
        if let name {
            return "event: \(name)\ndata: \(data)\n\n"
        }
        return "data: \(data)\n\n"
    }
}

extension MockWireFormat {
    /// The renderer answering requests of this format; unknown routes are answered in OpenAI's format.
    var renderer: any WireRenderer {
        switch self {
        case .anthropic: AnthropicRenderer()
        case .gemini: GeminiRenderer()
        default: OpenAIRenderer()
        }
    }
}
