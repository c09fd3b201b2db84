/// What ``MockLLMServer`` does with one request: answer it, fail it, or misbehave in a scripted way.
///
/// Behaviours are built with static functions and queued per model with `MockLLMServer.script(_:_:)`.
/// Every answer is rendered in the wire format of the route the request came in on, and streamed when the request
/// asked for a stream, so one script serves OpenAI, Azure, Anthropic and Gemini clients alike.
///
/// ```swift
/// server.script("gpt-4o", [
///     .status(429, headers: ["retry-after": "1"]),
///     .delayed(.milliseconds(200), .text("Hello")),
///     .cutStream(afterChunks: 2),
/// ])
/// ```
///
/// The stream faults (``cutStream(afterChunks:text:)``, ``missingTerminator(text:)``,
/// ``malformedChunk(afterChunks:text:)``, ``streamError(afterChunks:status:message:text:)``,
/// ``stallAfter(chunks:text:)``) describe what happens to a streamed answer. Each documents what it does to a
/// request that did not ask for a stream.
public struct MockBehavior: Sendable {
    indirect enum Kind: Sendable {
        case answer(MockAnswer)
        case status(MockErrorSpec, headers: [String: String])
        case raw(status: Int, headers: [String: String], body: String)
        case rawParts(status: Int, headers: [String: String], parts: [String])
        case delayed(Duration, MockBehavior)
        case chunkDelay(Duration, MockBehavior)
        case cutStream(afterChunks: Int, text: String)
        case missingTerminator(text: String)
        case malformedChunk(afterChunks: Int, text: String)
        case streamError(afterChunks: Int, error: MockErrorSpec, text: String)
        case hang
        case reset
        case stallAfter(chunks: Int, text: String)
    }

    let kind: Kind

    private init(_ kind: Kind) {
        self.kind = kind
    }

    /// Answers with `text`.
    ///
    /// Without a stream the body is a complete response of the route's format. A stream sends the text in pieces,
    /// each a chunk of the format, followed by the format's closing events (`data: [DONE]`, `message_stop`, a last
    /// Gemini chunk carrying `finishReason`). The answer names the model the request asked for.
    ///
    /// ```swift
    /// server.script("claude-sonnet-4", .text("Bonjour", usage: (prompt: 12, completion: 3)))
    /// ```
    ///
    /// - Parameters:
    ///   - text: The assistant's answer.
    ///   - chunks: The number of stream pieces, of nearly equal length. By default one piece per word, each word
    ///     after the first keeping the whitespace before it.
    ///   - usage: The token counts to report. By default 10 prompt tokens and one completion token per word.
    ///   - finishReason: Why the answer ended, in OpenAI's words: `"stop"` (the default), `"length"`,
    ///     `"tool_calls"` or `"content_filter"`, translated for Anthropic (`end_turn`, `max_tokens`, `tool_use`,
    ///     `refusal`) and Gemini (`STOP`, `MAX_TOKENS`, `STOP`, `SAFETY`). Any other value is sent verbatim.
    /// - Returns: The behaviour.
    public static func text(
        _ text: String,
        chunks: Int? = nil,
        usage: (prompt: Int, completion: Int)? = nil,
        finishReason: String? = nil
    ) -> MockBehavior {
        MockBehavior(
            .answer(MockAnswer(content: .text(text, chunks: chunks), usage: usage, finishReason: finishReason))
        )
    }

    /// Answers with a call of the tool `name`.
    ///
    /// OpenAI gets a `tool_calls` entry (finish reason `tool_calls`), Anthropic a `tool_use` block (stop reason
    /// `tool_use`), Gemini a `functionCall` part. A stream sends the arguments in several fragments
    /// (`function.arguments` deltas, `input_json_delta` events); Gemini, which does not split calls, sends the call
    /// in one chunk.
    ///
    /// ```swift
    /// server.script("gpt-4o", .toolCall(name: "get_weather", arguments: #"{"city":"Paris"}"#))
    /// ```
    ///
    /// - Parameters:
    ///   - name: The tool's name.
    ///   - arguments: The arguments as JSON object text. OpenAI receives it as a string, Anthropic's `input` and
    ///     Gemini's `args` embed it as an object, so it must be a valid JSON object.
    ///   - id: The call's id, sent verbatim to OpenAI and Anthropic (Gemini calls carry no id).
    /// - Returns: The behaviour.
    public static func toolCall(name: String, arguments: String, id: String = "call_1") -> MockBehavior {
        MockBehavior(
            .answer(
                MockAnswer(content: .toolCall(id: id, name: name, arguments: arguments), usage: nil, finishReason: nil)
            )
        )
    }

    /// Fails with the HTTP status `status` and the error body of the route's format.
    ///
    /// - OpenAI and Azure: `{"error":{"message":…,"type":…,"param":null,"code":…}}`.
    /// - Anthropic: `{"type":"error","error":{"type":…,"message":…}}`, the type following the status
    ///   (`400` `invalid_request_error`, `401` `authentication_error`, `403` `permission_error`,
    ///   `404` `not_found_error`, `413` `request_too_large`, `429` `rate_limit_error`, `500` `api_error`,
    ///   `503` and `529` `overloaded_error`).
    /// - Gemini: `{"error":{"code":…,"message":…,"status":…}}`, the status following the HTTP status
    ///   (`INVALID_ARGUMENT`, `UNAUTHENTICATED`, `PERMISSION_DENIED`, `NOT_FOUND`, `RESOURCE_EXHAUSTED`,
    ///   `INTERNAL`, `UNAVAILABLE`, `DEADLINE_EXCEEDED`, …).
    ///
    /// The error body is plain JSON even when the request asked for a stream, as the providers do.
    ///
    /// ```swift
    /// server.script("gpt-4o", .status(429, headers: ["retry-after": "2"]))
    /// server.script("gpt-4o", .status(400, message: "too long", code: "context_length_exceeded"))
    /// ```
    ///
    /// - Parameters:
    ///   - status: The HTTP status code.
    ///   - message: The error message; by default a realistic one for the status.
    ///   - type: Overrides the error type (OpenAI `type`, Anthropic `error.type`, Gemini `status`).
    ///   - code: The OpenAI error `code`, such as `"rate_limit_exceeded"`; by default one that fits the status,
    ///     or `null`.
    ///   - headers: Extra response headers, such as `retry-after` or `retry-after-ms`.
    /// - Returns: The behaviour.
    public static func status(
        _ status: Int,
        message: String? = nil,
        type: String? = nil,
        code: String? = nil,
        headers: [String: String] = [:]
    ) -> MockBehavior {
        MockBehavior(.status(MockErrorSpec(status: status, message: message, type: type, code: code), headers: headers))
    }

    /// Answers with exactly this status, these headers and this body, whatever the route.
    ///
    /// A `content-length` header is added unless `headers` sets `content-length` or `transfer-encoding`.
    ///
    /// ```swift
    /// server.script("gpt-4o", .raw(status: 502, headers: ["content-type": "text/html"], body: "<h1>Bad Gateway</h1>"))
    /// ```
    ///
    /// - Parameters:
    ///   - status: The HTTP status code.
    ///   - headers: The response headers.
    ///   - body: The body, sent as UTF-8.
    /// - Returns: The behaviour.
    public static func raw(status: Int, headers: [String: String] = [:], body: String) -> MockBehavior {
        MockBehavior(.raw(status: status, headers: headers, body: body))
    }

    /// Answers with exactly this status, these headers and a chunked body sent in these parts, each written and
    /// flushed on its own (wrap it in ``chunkDelay(_:_:)`` to space them out, so that a client reads them apart).
    ///
    /// ```swift
    /// server.script("gemini-2.0-flash", .chunkDelay(.milliseconds(20), .raw(status: 200, parts: [first, second])))
    /// ```
    ///
    /// - Parameters:
    ///   - status: The HTTP status code.
    ///   - headers: The response headers.
    ///   - parts: The body's pieces, sent as UTF-8.
    /// - Returns: The behaviour.
    public static func raw(status: Int, headers: [String: String] = [:], parts: [String]) -> MockBehavior {
        MockBehavior(.rawParts(status: status, headers: headers, parts: parts))
    }

    /// Waits `delay` before doing what `then` does (before the response head is sent).
    ///
    /// The wait is a timer on the connection's event loop; no thread is blocked.
    ///
    /// ```swift
    /// server.script("gpt-4o", .delayed(.seconds(5), .text("too late")))
    /// ```
    ///
    /// - Parameters:
    ///   - delay: How long to wait.
    ///   - then: What to do afterwards.
    /// - Returns: The behaviour.
    public static func delayed(_ delay: Duration, _ then: MockBehavior) -> MockBehavior {
        MockBehavior(.delayed(delay, then))
    }

    /// Does what `then` does, waiting `delay` between two consecutive pieces of the response body.
    ///
    /// For a stream this paces the events; a non-streamed body is a single piece and is not delayed.
    ///
    /// ```swift
    /// server.script("gpt-4o", .chunkDelay(.milliseconds(50), .text("one two three")))
    /// ```
    ///
    /// - Parameters:
    ///   - delay: The gap between two body pieces.
    ///   - then: The behaviour to pace.
    /// - Returns: The behaviour.
    public static func chunkDelay(_ delay: Duration, _ then: MockBehavior) -> MockBehavior {
        MockBehavior(.chunkDelay(delay, then))
    }

    /// Streams the first `afterChunks` content chunks of `text` with a `200` head, then closes the connection
    /// without the format's terminator and without ending the chunked body: the client sees the connection drop.
    ///
    /// The format's opening events (Anthropic's `message_start`, `content_block_start`, `ping`; OpenAI's tool call
    /// header) do not count as content chunks. The connection closes 200 ms after the last chunk, so that clients
    /// which drop data arriving in the same read as the end of the connection (AsyncHTTPClient does) still see every
    /// chunk. A request that did not ask for a stream gets the head and the first half of the body, then the
    /// connection closes.
    ///
    /// - Parameters:
    ///   - afterChunks: How many content chunks to send before closing.
    ///   - text: The text being streamed.
    /// - Returns: The behaviour.
    public static func cutStream(
        afterChunks: Int,
        text: String = "The quick brown fox jumps over the lazy dog"
    ) -> MockBehavior {
        MockBehavior(.cutStream(afterChunks: afterChunks, text: text))
    }

    /// Streams every content chunk of `text`, then ends the HTTP response cleanly but without the format's
    /// terminator: no finish chunk and `data: [DONE]` for OpenAI, no `content_block_stop`, `message_delta` and
    /// `message_stop` for Anthropic, no chunk carrying `finishReason` for Gemini.
    ///
    /// A request that did not ask for a stream gets a normal answer.
    ///
    /// - Parameter text: The text being streamed.
    /// - Returns: The behaviour.
    public static func missingTerminator(text: String = "The quick brown fox jumps over the lazy dog") -> MockBehavior {
        MockBehavior(.missingTerminator(text: text))
    }

    /// Streams `afterChunks` good content chunks, then an event whose data is `{not json`, then the rest of the
    /// stream, ending normally with the format's terminator.
    ///
    /// A request that did not ask for a stream gets a `200` whose body is `{not json`.
    ///
    /// - Parameters:
    ///   - afterChunks: How many content chunks precede the malformed one.
    ///   - text: The text being streamed.
    /// - Returns: The behaviour.
    public static func malformedChunk(
        afterChunks: Int,
        text: String = "The quick brown fox jumps over the lazy dog"
    ) -> MockBehavior {
        MockBehavior(.malformedChunk(afterChunks: afterChunks, text: text))
    }

    /// Streams `afterChunks` content chunks with a `200` head, then an in-stream error event, then ends the response
    /// cleanly without the terminator.
    ///
    /// - OpenAI and Azure: `data: {"error":{"message":…,"type":"server_error","param":null,"code":null}}`.
    /// - Anthropic: `event: error` with `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`.
    /// - Gemini: `data: {"error":{"code":503,"message":…,"status":"UNAVAILABLE"}}`.
    ///
    /// The error's type follows `status` as for ``status(_:message:type:code:headers:)``. A request that did not ask
    /// for a stream gets that status and error body instead.
    ///
    /// - Parameters:
    ///   - afterChunks: How many content chunks precede the error.
    ///   - status: The status the error stands for.
    ///   - message: The error message; by default a realistic one for the status.
    ///   - text: The text being streamed.
    /// - Returns: The behaviour.
    public static func streamError(
        afterChunks: Int,
        status: Int = 503,
        message: String? = nil,
        text: String = "The quick brown fox jumps over the lazy dog"
    ) -> MockBehavior {
        let error = MockErrorSpec(status: status, message: message, type: nil, code: nil)
        return MockBehavior(.streamError(afterChunks: afterChunks, error: error, text: text))
    }

    /// Reads the request and never answers, keeping the connection open.
    ///
    /// When the client gives up and closes the connection, the request counts as abandoned
    /// (``MockLLMServer/abandonedRequests``).
    public static let hang = MockBehavior(.hang)

    /// Closes the connection as soon as the request has been read, with `SO_LINGER` set to zero so that the client
    /// receives a TCP reset.
    public static let reset = MockBehavior(.reset)

    /// Streams `chunks` content chunks of `text` with a `200` head, then sends nothing more and never closes.
    ///
    /// When the client gives up and closes the connection, the request counts as abandoned. A request that did not
    /// ask for a stream gets the head and the first half of the body, then nothing more.
    ///
    /// - Parameters:
    ///   - chunks: How many content chunks to send.
    ///   - text: The text being streamed.
    /// - Returns: The behaviour.
    public static func stallAfter(
        chunks: Int,
        text: String = "The quick brown fox jumps over the lazy dog"
    ) -> MockBehavior {
        MockBehavior(.stallAfter(chunks: chunks, text: text))
    }
}

/// A successful answer, independent of wire format.
struct MockAnswer: Sendable {
    enum Content: Sendable {
        case text(String, chunks: Int?)
        case toolCall(id: String, name: String, arguments: String)
    }

    var content: Content
    var usage: (prompt: Int, completion: Int)?
    var finishReason: String?

    /// A plain text answer with default usage and finish reason.
    static func text(_ text: String) -> MockAnswer {
        MockAnswer(content: .text(text, chunks: nil), usage: nil, finishReason: nil)
    }

    var isToolCall: Bool {
        if case .toolCall = self.content { return true }
        return false
    }

    /// The pieces a stream sends: text pieces, or argument fragments of a tool call.
    var streamPieces: [String] {
        switch self.content {
        case .text(let text, let chunks):
            chunks.map { TextPieces.split(text, into: $0) } ?? TextPieces.words(text)
        case .toolCall(_, _, let arguments):
            TextPieces.split(arguments, maximumLength: 8)
        }
    }

    var promptTokens: Int {
        self.usage?.prompt ?? 10
    }

    var completionTokens: Int {
        if let usage = self.usage { return usage.completion }
        switch self.content {
        case .text(let text, _):
            return TextPieces.wordCount(text)
        case .toolCall(_, let name, let arguments):
            return TextPieces.wordCount(name) + max(1, TextPieces.wordCount(arguments))
        }
    }

    /// The finish reason in OpenAI's vocabulary, which the other formats translate.
    var openAIFinishReason: String {
        self.finishReason ?? (self.isToolCall ? "tool_calls" : "stop")
    }
}

/// An error to render in a wire format.
struct MockErrorSpec: Sendable {
    var status: Int
    var message: String?
    var type: String?
    var code: String?
}
