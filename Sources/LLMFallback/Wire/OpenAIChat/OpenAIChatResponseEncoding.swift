import NIOCore

// MARK: - The server half's answers: completions, chunk streams and errors, written by hand

extension OpenAIChatServer {
    /// Writes `response` as a whole `chat.completion` object.
    ///
    /// Tool call ids carry the calls' ``ProviderState`` (``ProviderState/encodedID(_:state:)``), so a client that
    /// echoes them back gives the provider its state in the next turn.
    public static func writeResponse(_ response: ChatResponse, id: String, created: Int, into buffer: inout ByteBuffer) {
        buffer.writeRaw(#"{"id":"#)
        buffer.writeJSONString(id)
        buffer.writeRaw(#","object":"chat.completion","created":"#)
        buffer.writeJSONInt(created)
        buffer.writeRaw(#","model":"#)
        buffer.writeJSONString(response.model)
        buffer.writeRaw(#","choices":[{"index":0,"message":{"role":"assistant","content":"#)
        if response.content.isEmpty && !response.toolCalls.isEmpty {
            buffer.writeRaw("null")
        } else {
            buffer.writeJSONString(response.content)
        }
        buffer.writeRaw(#","refusal":null"#)
        if !response.toolCalls.isEmpty {
            buffer.writeRaw(#","tool_calls":["#)
            for (offset, call) in response.toolCalls.enumerated() {
                if offset > 0 { buffer.writeInteger(UInt8(ascii: ",")) }
                buffer.writeRaw(#"{"id":"#)
                buffer.writeJSONString(ProviderState.encodedID(call.id, state: call.providerState))
                buffer.writeRaw(#","type":"function","function":{"name":"#)
                buffer.writeJSONString(call.name)
                buffer.writeRaw(#","arguments":"#)
                buffer.writeJSONString(call.arguments)
                buffer.writeRaw("}}")
            }
            buffer.writeInteger(UInt8(ascii: "]"))
        }
        buffer.writeRaw(#"},"logprobs":null,"finish_reason":"#)
        buffer.writeJSONString(orNull: response.finishReason?.openAIValue)
        buffer.writeRaw("}]")
        if let usage = response.usage {
            buffer.writeRaw(#","usage":"#)
            writeUsage(usage, into: &buffer)
        }
        buffer.writeRaw(#","system_fingerprint":null}"#)
    }

    /// Writes a `usage` object, with token details when the provider reported them.
    public static func writeUsage(_ usage: Usage, into buffer: inout ByteBuffer) {
        buffer.writeRaw(#"{"prompt_tokens":"#)
        buffer.writeJSONInt(usage.promptTokens)
        buffer.writeJSONField("completion_tokens", int: usage.completionTokens)
        buffer.writeJSONField("total_tokens", int: usage.totalTokens)
        if let cached = usage.cachedTokens {
            buffer.writeRaw(#","prompt_tokens_details":{"cached_tokens":"#)
            buffer.writeJSONInt(cached)
            buffer.writeInteger(UInt8(ascii: "}"))
        }
        if let reasoning = usage.reasoningTokens {
            buffer.writeRaw(#","completion_tokens_details":{"reasoning_tokens":"#)
            buffer.writeJSONInt(reasoning)
            buffer.writeInteger(UInt8(ascii: "}"))
        }
        buffer.writeInteger(UInt8(ascii: "}"))
    }

    /// Writes an OpenAI error object: `{"error":{"message","type","param","code"}}`.
    public static func writeError(message: String, type: String, param: String? = nil, code: String? = nil, into buffer: inout ByteBuffer) {
        buffer.writeRaw(#"{"error":{"message":"#)
        buffer.writeJSONString(message)
        buffer.writeRaw(#","type":"#)
        buffer.writeJSONString(type)
        buffer.writeRaw(#","param":"#)
        buffer.writeJSONString(orNull: param)
        buffer.writeRaw(#","code":"#)
        buffer.writeJSONString(orNull: code)
        buffer.writeRaw("}}")
    }

    /// Turns a chain's ``ChatChunk``s into OpenAI `chat.completion.chunk` Server-Sent Events.
    ///
    /// The first event carries `"role":"assistant"`; text becomes `delta.content`, tool call fragments
    /// `delta.tool_calls` (`index`, and `id`, `type`, `function.name` on a call's first fragment); a finish reason ends
    /// the choice with an empty delta; usage is held for the closing usage chunk (`"choices":[]`) that
    /// `stream_options.include_usage` asks for. The stream ends with `data: [DONE]`, or with an error event and no
    /// `[DONE]` when it fails.
    public struct StreamEncoder: Sendable {
        /// `data: {"id":"...","object":"chat.completion.chunk","created":...,"model":`, written once per stream.
        private let prefix: ByteBuffer
        private var model: String
        private var modelJSON: ByteBuffer
        private let includeUsage: Bool
        private var sentRole = false
        private var usage: Usage?
        private var finished = false

        /// Creates the encoder of one stream.
        ///
        /// - Parameters:
        ///   - id: The `chat.completion.chunk` id of every event.
        ///   - created: Seconds since 1970.
        ///   - model: The model named until a chunk names another.
        ///   - includeUsage: Whether the stream ends with a usage chunk (`stream_options.include_usage`).
        public init(id: String, created: Int, model: String, includeUsage: Bool, allocator: ByteBufferAllocator = ByteBufferAllocator()) {
            var prefix = allocator.buffer(capacity: 96 + id.utf8.count)
            prefix.writeRaw(#"data: {"id":"#)
            prefix.writeJSONString(id)
            prefix.writeRaw(#","object":"chat.completion.chunk","created":"#)
            prefix.writeJSONInt(created)
            prefix.writeRaw(#","model":"#)
            self.prefix = prefix
            self.model = model
            var modelJSON = allocator.buffer(capacity: model.utf8.count + 2)
            modelJSON.writeJSONString(model)
            self.modelJSON = modelJSON
            self.includeUsage = includeUsage
        }

        /// Whether the answer's finish reason has been sent.
        public var isFinished: Bool { finished }

        /// Writes the events for `chunk` (none for a chunk that only carries usage).
        ///
        /// A chunk whose ``ChatChunk/rawData`` an OpenAI-format provider sent is written as it came (after the role
        /// chunk), so that what the chat model does not hold (logprobs, ...) reaches the client.
        public mutating func write(_ chunk: ChatChunk, into buffer: inout ByteBuffer) {
            if let usage = chunk.usage { self.usage = usage }
            guard chunk.hasContent || chunk.finishReason != nil || !sentRole else { return }
            if !chunk.model.isEmpty && chunk.model != model {
                model = chunk.model
                modelJSON.clear()
                modelJSON.writeJSONString(model)
            }
            if let raw = chunk.rawData, chunk.wireFormat?.speaksOpenAIChat == true, chunk.hasContent || chunk.finishReason != nil {
                // The provider spoke the client's format: its chunk as it was sent (logprobs and all), after the
                // role chunk the chain's decoder holds back.
                if !sentRole {
                    var role = chunk
                    role.content = ""
                    role.toolCallDeltas = []
                    role.finishReason = nil
                    role.rawData = nil
                    write(role, into: &buffer)
                }
                if chunk.finishReason != nil { finished = true }
                Self.writeDataLines(raw, into: &buffer)
                return
            }
            writeHead(into: &buffer)
            buffer.writeRaw(#","choices":[{"index":0,"delta":{"#)
            var needsComma = false
            if !sentRole {
                sentRole = true
                buffer.writeRaw(#""role":"assistant""#)
                needsComma = true
                if chunk.content.isEmpty {
                    buffer.writeRaw(chunk.toolCallDeltas.isEmpty ? #","content":"""# : #","content":null"#)
                }
            }
            if !chunk.content.isEmpty {
                if needsComma { buffer.writeInteger(UInt8(ascii: ",")) }
                buffer.writeRaw(#""content":"#)
                buffer.writeJSONString(chunk.content)
                needsComma = true
            }
            if !chunk.toolCallDeltas.isEmpty {
                if needsComma { buffer.writeInteger(UInt8(ascii: ",")) }
                buffer.writeRaw(#""tool_calls":["#)
                for (offset, delta) in chunk.toolCallDeltas.enumerated() {
                    if offset > 0 { buffer.writeInteger(UInt8(ascii: ",")) }
                    buffer.writeRaw(#"{"index":"#)
                    buffer.writeJSONInt(delta.index)
                    if let id = delta.id, !id.isEmpty {
                        buffer.writeRaw(#","id":"#)
                        buffer.writeJSONString(ProviderState.encodedID(id, state: delta.providerState))
                        buffer.writeRaw(#","type":"function""#)
                    }
                    buffer.writeRaw(#","function":{"#)
                    if let name = delta.name, !name.isEmpty {
                        buffer.writeRaw(#""name":"#)
                        buffer.writeJSONString(name)
                        buffer.writeInteger(UInt8(ascii: ","))
                    }
                    buffer.writeRaw(#""arguments":"#)
                    buffer.writeJSONString(delta.arguments)
                    buffer.writeRaw("}}")
                }
                buffer.writeInteger(UInt8(ascii: "]"))
            }
            buffer.writeRaw(#"},"logprobs":null,"finish_reason":"#)
            if let reason = chunk.finishReason {
                finished = true
                buffer.writeJSONString(reason.openAIValue)
            } else {
                buffer.writeRaw("null")
            }
            buffer.writeRaw("}]")
            if !chunk.producedBy.isEmpty {
                // An answer another provider finished after a break names who produced it (clients ignore members
                // they do not know; the head's x-llm-fallback-* headers were sent before the break).
                buffer.writeRaw(#","llm_fallback":{"providers":["#)
                for (offset, name) in chunk.producedBy.enumerated() {
                    if offset > 0 { buffer.writeInteger(UInt8(ascii: ",")) }
                    buffer.writeJSONString(name)
                }
                buffer.writeRaw("]}")
            }
            buffer.writeRaw("}\n\n")
        }

        /// `data` as one event: a `data: ` field per line, since an event that arrived in several `data:` lines was
        /// joined with line feeds (written on one line, the second would be a bare line the client cannot parse).
        static func writeDataLines(_ data: String, into buffer: inout ByteBuffer) {
            buffer.writeRaw("data: ")
            var data = data
            data.withUTF8 { bytes in
                let raw = UnsafeRawBufferPointer(bytes)
                var start = 0
                for index in raw.indices where raw[index] == 0x0A {
                    buffer.writeBytes(UnsafeRawBufferPointer(rebasing: raw[start..<index]))
                    buffer.writeRaw("\ndata: ")
                    start = index + 1
                }
                buffer.writeBytes(UnsafeRawBufferPointer(rebasing: raw[start...]))
            }
            buffer.writeRaw("\n\n")
        }

        /// Writes the clean end: the usage chunk when asked for and known, then `data: [DONE]`.
        public mutating func writeEnd(into buffer: inout ByteBuffer) {
            if includeUsage, let usage {
                writeHead(into: &buffer)
                buffer.writeRaw(#","choices":[],"usage":"#)
                OpenAIChatServer.writeUsage(usage, into: &buffer)
                buffer.writeRaw("}\n\n")
            }
            buffer.writeRaw("data: [DONE]\n\n")
        }

        /// Writes an error event, the last thing a failed stream sends (no `[DONE]` follows).
        public static func writeErrorEvent(message: String, type: String, param: String? = nil, code: String? = nil, into buffer: inout ByteBuffer) {
            buffer.writeRaw("data: ")
            OpenAIChatServer.writeError(message: message, type: type, param: param, code: code, into: &buffer)
            buffer.writeRaw("\n\n")
        }

        private func writeHead(into buffer: inout ByteBuffer) {
            var prefix = prefix
            buffer.writeBuffer(&prefix)
            var model = modelJSON
            buffer.writeBuffer(&model)
        }
    }

    /// The bodies of `GET /v1/models` and `GET /health/providers`.
}
