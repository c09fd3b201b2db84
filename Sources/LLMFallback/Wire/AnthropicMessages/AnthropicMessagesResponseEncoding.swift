import NIOCore

extension AnthropicMessagesServer {
    /// Encodes an answer as an Anthropic `message` object.
    ///
    /// The text becomes a `text` block and each tool call a `tool_use` block after it (its arguments as the
    /// `input` object, written as the model produced them; arguments that are not a JSON object become `{}`). A
    /// call's ``ToolCall/providerState`` travels inside its id (``ProviderState/encodedID(_:state:)``), so a
    /// client that echoes the id back gives it back. `stop_reason` follows ``stopReason(for:hasToolCalls:)``;
    /// `usage.input_tokens` excludes the cached tokens, which are `cache_read_input_tokens`, as Anthropic counts
    /// them (``Usage/promptTokens`` includes them).
    ///
    /// - Parameters:
    ///   - response: The answer.
    ///   - id: The message id (`msg_...`).
    ///   - model: The model to name, usually the one the client asked for.
    /// - Returns: The JSON body.
    public static func encodeResponse(_ response: ChatResponse, id: String, model: String) -> ByteBuffer {
        var buffer = ByteBufferAllocator().buffer(capacity: 256 + response.content.utf8.count)
        buffer.writeRaw(#"{"id":"#)
        buffer.writeJSONString(id)
        buffer.writeRaw(#","type":"message","role":"assistant","model":"#)
        buffer.writeJSONString(model)
        buffer.writeRaw(#","content":["#)
        var first = true
        if !response.content.isEmpty || response.toolCalls.isEmpty {
            buffer.writeRaw(#"{"type":"text","text":"#)
            buffer.writeJSONString(response.content)
            buffer.writeInteger(UInt8(ascii: "}"))
            first = false
        }
        for call in response.toolCalls {
            if !first { buffer.writeInteger(UInt8(ascii: ",")) }
            first = false
            buffer.writeRaw(#"{"type":"tool_use","id":"#)
            buffer.writeJSONString(ProviderState.encodedID(call.id, state: call.providerState))
            buffer.writeRaw(#","name":"#)
            buffer.writeJSONString(call.name)
            buffer.writeRaw(#","input":"#)
            writeInput(call.arguments, into: &buffer)
            buffer.writeInteger(UInt8(ascii: "}"))
        }
        buffer.writeRaw(#"],"stop_reason":"#)
        buffer.writeJSONString(stopReason(for: response.finishReason, hasToolCalls: !response.toolCalls.isEmpty))
        buffer.writeRaw(#","stop_sequence":null,"usage":"#)
        writeUsage(response.usage ?? Usage(promptTokens: 0, completionTokens: 0), includeInput: true, into: &buffer)
        buffer.writeInteger(UInt8(ascii: "}"))
        return buffer
    }

    /// Encodes an error as Anthropic does: `{"type":"error","error":{"type":...,"message":...}}`.
    ///
    /// - Parameters:
    ///   - type: The error type: `invalid_request_error`, `authentication_error`, `permission_error`,
    ///     `not_found_error`, `request_too_large`, `rate_limit_error`, `api_error`, `overloaded_error`.
    ///   - message: What went wrong.
    ///   - requestID: The `request_id` member Anthropic adds, when there is one to give.
    /// - Returns: The JSON body.
    public static func encodeError(type: String, message: String, requestID: String? = nil) -> ByteBuffer {
        var buffer = ByteBufferAllocator().buffer(capacity: 64 + message.utf8.count)
        writeError(type: type, message: message, requestID: requestID, into: &buffer)
        return buffer
    }

    /// The error `type` Anthropic answers an HTTP status with: 400 `invalid_request_error`, 401
    /// `authentication_error`, 403 `permission_error`, 404 `not_found_error`, 413 `request_too_large`, 429
    /// `rate_limit_error`, 503 and 529 `overloaded_error`, other 5xx `api_error`; any other status
    /// `invalid_request_error`.
    public static func errorType(forStatus status: Int) -> String {
        switch status {
        case 401: "authentication_error"
        case 403: "permission_error"
        case 404: "not_found_error"
        case 413: "request_too_large"
        case 429: "rate_limit_error"
        case 503, 529: "overloaded_error"
        case 500...: "api_error"
        default: "invalid_request_error"
        }
    }

    /// Anthropic's `stop_reason` for a finish reason: `end_turn`, `max_tokens`, `tool_use`, `refusal`; a reason of
    /// another provider's with no counterpart (``FinishReason/other(_:)``) as it was spelled (`pause_turn` stays
    /// `pause_turn`). No reason is `tool_use` when the answer called tools, else `end_turn`.
    public static func stopReason(for reason: FinishReason?, hasToolCalls: Bool) -> String {
        switch reason {
        case .stop?: return "end_turn"
        case .length?: return "max_tokens"
        case .toolCalls?: return "tool_use"
        case .contentFilter?: return "refusal"
        case .other(let raw)?: return raw
        case nil: return hasToolCalls ? "tool_use" : "end_turn"
        }
    }

    static func writeError(type: String, message: String, requestID: String?, into buffer: inout ByteBuffer) {
        buffer.writeRaw(#"{"type":"error","error":{"type":"#)
        buffer.writeJSONString(type)
        buffer.writeRaw(#","message":"#)
        buffer.writeJSONString(message)
        buffer.writeInteger(UInt8(ascii: "}"))
        if let requestID {
            buffer.writeRaw(#","request_id":"#)
            buffer.writeJSONString(requestID)
        }
        buffer.writeInteger(UInt8(ascii: "}"))
    }

    /// A tool call's arguments as the `input` object: their own text when it is a JSON object, else `{}`.
    static func writeInput(_ arguments: String, into buffer: inout ByteBuffer) {
        if case .object? = try? JSONValue(parsing: arguments) {
            buffer.writeString(arguments)
        } else {
            buffer.writeRaw("{}")
        }
    }

    /// `{"input_tokens":...,"cache_read_input_tokens":...,"output_tokens":...}`; `includeInput` `false` writes the
    /// output tokens alone.
    static func writeUsage(_ usage: Usage, includeInput: Bool, into buffer: inout ByteBuffer) {
        buffer.writeInteger(UInt8(ascii: "{"))
        if includeInput {
            let cached = max(0, usage.cachedTokens ?? 0)
            buffer.writeRaw(#""input_tokens":"#)
            buffer.writeJSONInt(usage.promptTokens - min(cached, usage.promptTokens))
            if let cachedTokens = usage.cachedTokens {
                buffer.writeJSONField("cache_read_input_tokens", int: cachedTokens)
            }
            buffer.writeInteger(UInt8(ascii: ","))
        }
        buffer.writeRaw(#""output_tokens":"#)
        buffer.writeJSONInt(usage.completionTokens)
        buffer.writeInteger(UInt8(ascii: "}"))
    }

    /// Encodes a stream of ``ChatChunk``s as Anthropic's Server-Sent Events.
    ///
    /// The events follow Anthropic's grammar: `message_start` once, then per content block a
    /// `content_block_start`, its `content_block_delta`s (`text_delta` for text, `input_json_delta` for a tool
    /// call's arguments) and a `content_block_stop`; at the end `message_delta` (with `stop_reason` and the usage)
    /// and `message_stop`. Text after a tool call, or a second tool call, opens a new block. A fragment of a tool
    /// call whose block was already closed (a provider that interleaves calls) is sent as a delta of that block's
    /// index, which the SDKs accumulate by index.
    ///
    /// ```swift
    /// var encoder = AnthropicMessagesServer.StreamEncoder(id: "msg_01", model: "claude-sonnet-4-5")
    /// for try await chunk in chain.stream(request) {
    ///     for event in encoder.encode(chunk) { try await writer.write(event) }
    /// }
    /// for event in encoder.finish(finishReason: nil, usage: nil) { try await writer.write(event) }
    /// ```
    ///
    /// A chunk's finish reason and usage are remembered for ``finish(finishReason:usage:)``; nothing follows
    /// `message_stop`. A ``ChatChunk/Kind/restart`` chunk cannot be expressed in this grammar and is ignored.
    public struct StreamEncoder: Sendable {
        private enum Block: Equatable {
            case text(Int)
            case tool(Int)
        }

        private let id: String
        private let model: String
        private let inputTokens: Int
        private var started = false
        /// Whether `message_stop` was sent.
        public private(set) var isFinished = false
        private var nextBlock = 0
        private var open: Block?
        /// The block index of each tool call, by the call's index in the chunks.
        private var toolBlocks: [Int: Int] = [:]
        private var finishReason: FinishReason?
        private var usage: Usage?
        /// The providers that produced an answer another one finished after a break (``ChatChunk/producedBy``),
        /// named in `message_delta` as `llm_fallback.providers`.
        private var producers: [String] = []

        /// Creates an encoder.
        ///
        /// - Parameters:
        ///   - id: The message id (`msg_...`).
        ///   - model: The model to name.
        ///   - inputTokens: The prompt's tokens for `message_start`, when known before the answer (the usage at the
        ///     end repeats the provider's count).
        public init(id: String, model: String, inputTokens: Int = 0) {
            self.id = id
            self.model = model
            self.inputTokens = max(0, inputTokens)
        }

        /// `message_start`, the first time; nothing afterwards (``encode(_:)`` and ``finish(finishReason:usage:)``
        /// send it when it was not sent).
        public mutating func start() -> [String] {
            guard !started else { return [] }
            started = true
            var buffer = ByteBufferAllocator().buffer(capacity: 256)
            buffer.writeRaw(#"{"type":"message_start","message":{"id":"#)
            buffer.writeJSONString(id)
            buffer.writeRaw(#","type":"message","role":"assistant","model":"#)
            buffer.writeJSONString(model)
            buffer.writeRaw(#","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":"#)
            buffer.writeJSONInt(inputTokens)
            buffer.writeRaw(#","output_tokens":0}}}"#)
            return [Self.event("message_start", buffer)]
        }

        /// Takes over a stream whose events so far were relayed as a provider sent them (the start and
        /// `nextBlock` content blocks), to write what another provider continues it with: text goes on in
        /// `openBlock` when it is a text block, and other blocks get the indices after the relayed ones.
        ///
        /// - Returns: A `content_block_stop` for an open block that is not text, which the continuation cannot go
        ///   on (the gateway refuses such a take-over before it comes to this).
        package mutating func takeOver(nextBlock: Int, openBlock: (index: Int, isText: Bool)?) -> [String] {
            started = true
            self.nextBlock = max(self.nextBlock, nextBlock)
            guard let openBlock else { return [] }
            if openBlock.isText {
                open = .text(openBlock.index)
                return []
            }
            var buffer = ByteBufferAllocator().buffer(capacity: 48)
            buffer.writeRaw(#"{"type":"content_block_stop","index":"#)
            buffer.writeJSONInt(openBlock.index)
            buffer.writeInteger(UInt8(ascii: "}"))
            return [Self.event("content_block_stop", buffer)]
        }

        /// The events for one chunk: its text and tool call fragments (and `message_start` before the first).
        public mutating func encode(_ chunk: ChatChunk) -> [String] {
            guard !isFinished else { return [] }
            var events = start()
            guard chunk.kind == .delta else { return events }
            if !chunk.producedBy.isEmpty { producers = chunk.producedBy }
            if let reason = chunk.finishReason { finishReason = reason }
            if let reported = chunk.usage { usage = reported }
            if !chunk.content.isEmpty {
                if case .text(let index)? = open {
                    events.append(Self.textDelta(index: index, chunk.content))
                } else {
                    closeOpenBlock(into: &events)
                    let index = openBlock(.text(nextBlock))
                    events.append(Self.event("content_block_start", Self.textBlockStart(index: index)))
                    events.append(Self.textDelta(index: index, chunk.content))
                }
            }
            for delta in chunk.toolCallDeltas {
                if let index = toolBlocks[delta.index] {
                    if !delta.arguments.isEmpty { events.append(Self.jsonDelta(index: index, delta.arguments)) }
                    continue
                }
                closeOpenBlock(into: &events)
                let index = openBlock(.tool(nextBlock))
                toolBlocks[delta.index] = index
                let callID = ProviderState.encodedID(delta.id ?? "toolu_\(delta.index)", state: delta.providerState)
                var start = ByteBufferAllocator().buffer(capacity: 128)
                start.writeRaw(#"{"type":"content_block_start","index":"#)
                start.writeJSONInt(index)
                start.writeRaw(#","content_block":{"type":"tool_use","id":"#)
                start.writeJSONString(callID)
                start.writeRaw(#","name":"#)
                start.writeJSONString(delta.name ?? "")
                start.writeRaw(#","input":{}}}"#)
                events.append(Self.event("content_block_start", start))
                if !delta.arguments.isEmpty { events.append(Self.jsonDelta(index: index, delta.arguments)) }
            }
            return events
        }

        /// The closing events: `content_block_stop` for an open block, `message_delta` and `message_stop`.
        ///
        /// - Parameters:
        ///   - finishReason: Why the answer ended; by default the one a chunk carried, else `tool_use` or
        ///     `end_turn` (see ``AnthropicMessagesServer/stopReason(for:hasToolCalls:)``).
        ///   - usage: The answer's usage; by default the one a chunk carried. Without any, `output_tokens` is 0.
        /// - Returns: The events; none when the stream was already finished.
        public mutating func finish(finishReason: FinishReason? = nil, usage: Usage? = nil) -> [String] {
            guard !isFinished else { return [] }
            var events = start()
            closeOpenBlock(into: &events)
            isFinished = true
            let reason = AnthropicMessagesServer.stopReason(for: finishReason ?? self.finishReason, hasToolCalls: !toolBlocks.isEmpty)
            var buffer = ByteBufferAllocator().buffer(capacity: 160)
            buffer.writeRaw(#"{"type":"message_delta","delta":{"stop_reason":"#)
            buffer.writeJSONString(reason)
            buffer.writeRaw(#","stop_sequence":null},"usage":"#)
            if let usage = usage ?? self.usage {
                AnthropicMessagesServer.writeUsage(usage, includeInput: true, into: &buffer)
            } else {
                buffer.writeRaw(#"{"output_tokens":0}"#)
            }
            if !producers.isEmpty {
                buffer.writeRaw(#","llm_fallback":{"providers":["#)
                for (offset, name) in producers.enumerated() {
                    if offset > 0 { buffer.writeInteger(UInt8(ascii: ",")) }
                    buffer.writeJSONString(name)
                }
                buffer.writeRaw("]}")
            }
            buffer.writeInteger(UInt8(ascii: "}"))
            events.append(Self.event("message_delta", buffer))
            events.append(Self.event("message_stop", ByteBuffer(string: #"{"type":"message_stop"}"#)))
            return events
        }

        /// An `error` event, for a stream that fails after its head was sent (instead of a clean `message_stop`).
        ///
        /// - Parameters:
        ///   - type: The error type (`overloaded_error`, `api_error`, ...).
        ///   - message: What went wrong.
        public static func errorEvent(type: String, message: String) -> String {
            var buffer = ByteBufferAllocator().buffer(capacity: 64 + message.utf8.count)
            AnthropicMessagesServer.writeError(type: type, message: message, requestID: nil, into: &buffer)
            return event("error", buffer)
        }

        /// A `ping` event, Anthropic's keep-alive.
        public static let pingEvent = "event: ping\ndata: {\"type\":\"ping\"}\n\n"

        private mutating func openBlock(_ block: Block) -> Int {
            open = block
            nextBlock = nextBlock.saturatingAdd(1)
            switch block {
            case .text(let index), .tool(let index): return index
            }
        }

        private mutating func closeOpenBlock(into events: inout [String]) {
            guard let block = open else { return }
            open = nil
            let index: Int
            switch block {
            case .text(let value), .tool(let value): index = value
            }
            var buffer = ByteBufferAllocator().buffer(capacity: 48)
            buffer.writeRaw(#"{"type":"content_block_stop","index":"#)
            buffer.writeJSONInt(index)
            buffer.writeInteger(UInt8(ascii: "}"))
            events.append(Self.event("content_block_stop", buffer))
        }

        private static func textBlockStart(index: Int) -> ByteBuffer {
            var buffer = ByteBufferAllocator().buffer(capacity: 80)
            buffer.writeRaw(#"{"type":"content_block_start","index":"#)
            buffer.writeJSONInt(index)
            buffer.writeRaw(#","content_block":{"type":"text","text":""}}"#)
            return buffer
        }

        private static func textDelta(index: Int, _ text: String) -> String {
            var buffer = ByteBufferAllocator().buffer(capacity: 80 + text.utf8.count)
            buffer.writeRaw(#"{"type":"content_block_delta","index":"#)
            buffer.writeJSONInt(index)
            buffer.writeRaw(#","delta":{"type":"text_delta","text":"#)
            buffer.writeJSONString(text)
            buffer.writeRaw("}}")
            return event("content_block_delta", buffer)
        }

        private static func jsonDelta(index: Int, _ fragment: String) -> String {
            var buffer = ByteBufferAllocator().buffer(capacity: 80 + fragment.utf8.count)
            buffer.writeRaw(#"{"type":"content_block_delta","index":"#)
            buffer.writeJSONInt(index)
            buffer.writeRaw(#","delta":{"type":"input_json_delta","partial_json":"#)
            buffer.writeJSONString(fragment)
            buffer.writeRaw("}}")
            return event("content_block_delta", buffer)
        }

        /// `event: NAME\ndata: JSON\n\n`. The data is one line: the writer escapes every control character.
        private static func event(_ name: StaticString, _ data: ByteBuffer) -> String {
            var framed = ByteBufferAllocator().buffer(capacity: data.readableBytes + 24)
            framed.writeRaw("event: ")
            framed.writeRaw(name)
            framed.writeRaw("\ndata: ")
            framed.writeImmutableBuffer(data)
            framed.writeRaw("\n\n")
            return String(buffer: framed)
        }
    }
}
