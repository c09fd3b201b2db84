import NIOCore

extension GeminiGenerateServer {
    /// Encodes an answer as a `GenerateContentResponse`: one candidate whose `model` content has a text part and a
    /// `functionCall` part per tool call, its `finishReason`, `usageMetadata`, `modelVersion` and `responseId`.
    ///
    /// A call's arguments are its `args` object as the model produced them (`{}` when they are not a JSON
    /// object). A call whose ``ToolCall/providerState`` is Gemini's carries it as the part's `thoughtSignature`;
    /// with `includeCallIDs`, the call's `id` carries any state too (``ProviderState/encodedID(_:state:)``), so a
    /// client that echoes ids back gives it back whatever model its URL names. `finishReason` follows
    /// ``finishReason(for:)``; `candidatesTokenCount` excludes the reasoning tokens, which are
    /// `thoughtsTokenCount`, as Gemini counts them (``Usage/completionTokens`` includes them).
    ///
    /// - Parameters:
    ///   - response: The answer.
    ///   - id: The `responseId`.
    ///   - model: The `modelVersion` to name.
    ///   - includeCallIDs: Whether function calls carry an `id` (Gemini's own answers usually have none).
    /// - Returns: The JSON body.
    public static func encodeResponse(_ response: ChatResponse, id: String, model: String, includeCallIDs: Bool = true) -> ByteBuffer {
        var buffer = ByteBufferAllocator().buffer(capacity: 256 + response.content.utf8.count)
        var calls: [Call] = []
        calls.reserveCapacity(response.toolCalls.count)
        for call in response.toolCalls {
            calls.append(Call(id: call.id, name: call.name, arguments: call.arguments, state: call.providerState))
        }
        writeResponse(
            text: response.content, calls: calls, finishReason: finishReason(for: response.finishReason), finishing: true,
            usage: response.usage, id: id, model: model, includeCallIDs: includeCallIDs, into: &buffer)
        return buffer
    }

    /// Encodes an error as Google's APIs do: `{"error":{"code":...,"message":...,"status":...}}`.
    ///
    /// - Parameters:
    ///   - code: The HTTP status.
    ///   - message: What went wrong.
    ///   - status: The RPC status name: `INVALID_ARGUMENT`, `UNAUTHENTICATED`, `PERMISSION_DENIED`, `NOT_FOUND`,
    ///     `RESOURCE_EXHAUSTED`, `INTERNAL`, `UNAVAILABLE`, `DEADLINE_EXCEEDED`.
    /// - Returns: The JSON body.
    public static func encodeError(code: Int, message: String, status: String) -> ByteBuffer {
        var buffer = ByteBufferAllocator().buffer(capacity: 64 + message.utf8.count)
        writeError(code: code, message: message, status: status, into: &buffer)
        return buffer
    }

    /// The RPC status name Google's APIs give with an HTTP status: 400 `INVALID_ARGUMENT` (and other 4xx), 401
    /// `UNAUTHENTICATED`, 403 `PERMISSION_DENIED`, 404 `NOT_FOUND`, 409 `ABORTED`, 429 `RESOURCE_EXHAUSTED`, 499
    /// `CANCELLED`, 501 `UNIMPLEMENTED`, 503 `UNAVAILABLE`, 504 `DEADLINE_EXCEEDED`, other 5xx `INTERNAL`; `UNKNOWN`
    /// below 400.
    public static func status(forHTTPStatus status: Int) -> String {
        switch status {
        case 401: "UNAUTHENTICATED"
        case 403: "PERMISSION_DENIED"
        case 404: "NOT_FOUND"
        case 409: "ABORTED"
        case 429: "RESOURCE_EXHAUSTED"
        case 499: "CANCELLED"
        case 501: "UNIMPLEMENTED"
        case 503: "UNAVAILABLE"
        case 504: "DEADLINE_EXCEEDED"
        case 400..<500: "INVALID_ARGUMENT"
        case 500...: "INTERNAL"
        default: "UNKNOWN"
        }
    }

    /// Gemini's `finishReason` for a finish reason: `STOP` (tool calls too: Gemini stops with `STOP` when it
    /// calls functions), `MAX_TOKENS`, `SAFETY`; a reason of another provider's with no counterpart
    /// (``FinishReason/other(_:)``) as it was spelled; `STOP` when there is none.
    public static func finishReason(for reason: FinishReason?) -> String {
        switch reason {
        case nil, .stop?, .toolCalls?: return "STOP"
        case .length?: return "MAX_TOKENS"
        case .contentFilter?: return "SAFETY"
        case .other(let raw)?: return raw
        }
    }

    struct Call {
        var id: String?
        var name: String?
        var arguments: String
        var state: ProviderState?
    }

    static func writeError(code: Int, message: String, status: String, into buffer: inout ByteBuffer) {
        buffer.writeRaw(#"{"error":{"code":"#)
        buffer.writeJSONInt(code)
        buffer.writeRaw(#","message":"#)
        buffer.writeJSONString(message)
        buffer.writeRaw(#","status":"#)
        buffer.writeJSONString(status)
        buffer.writeRaw("}}")
    }

    /// A `GenerateContentResponse` with one candidate; `finishReason` written only when `finishing`.
    static func writeResponse(
        text: String, calls: [Call], finishReason: String?, finishing: Bool, usage: Usage?, id: String, model: String,
        includeCallIDs: Bool, into buffer: inout ByteBuffer
    ) {
        buffer.writeRaw(#"{"candidates":[{"content":{"role":"model","parts":["#)
        var first = true
        if !text.isEmpty || calls.isEmpty {
            buffer.writeRaw(#"{"text":"#)
            buffer.writeJSONString(text)
            buffer.writeInteger(UInt8(ascii: "}"))
            first = false
        }
        for call in calls {
            if !first { buffer.writeInteger(UInt8(ascii: ",")) }
            first = false
            buffer.writeRaw(#"{"functionCall":{"#)
            if includeCallIDs, let id = call.id {
                buffer.writeRaw(#""id":"#)
                buffer.writeJSONString(ProviderState.encodedID(id, state: call.state))
                buffer.writeInteger(UInt8(ascii: ","))
            }
            buffer.writeRaw(#""name":"#)
            buffer.writeJSONString(call.name ?? "")
            buffer.writeRaw(#","args":"#)
            AnthropicMessagesServer.writeInput(call.arguments, into: &buffer)
            buffer.writeInteger(UInt8(ascii: "}"))
            if let state = call.state, state.origin.hasPrefix(GeminiAdapter.origin("")) {
                buffer.writeRaw(#","thoughtSignature":"#)
                buffer.writeJSONString(state.value)
            }
            buffer.writeInteger(UInt8(ascii: "}"))
        }
        buffer.writeRaw("]}")
        if finishing, let finishReason {
            buffer.writeRaw(#","finishReason":"#)
            buffer.writeJSONString(finishReason)
        }
        buffer.writeRaw(#","index":0}]"#)
        if let usage {
            let reasoning = min(max(0, usage.reasoningTokens ?? 0), usage.completionTokens)
            buffer.writeRaw(#","usageMetadata":{"promptTokenCount":"#)
            buffer.writeJSONInt(usage.promptTokens)
            buffer.writeJSONField("candidatesTokenCount", int: usage.completionTokens - reasoning)
            buffer.writeJSONField("totalTokenCount", int: usage.totalTokens)
            if let cached = usage.cachedTokens { buffer.writeJSONField("cachedContentTokenCount", int: cached) }
            if let thoughts = usage.reasoningTokens { buffer.writeJSONField("thoughtsTokenCount", int: thoughts) }
            buffer.writeInteger(UInt8(ascii: "}"))
        }
        buffer.writeRaw(#","modelVersion":"#)
        buffer.writeJSONString(model)
        buffer.writeRaw(#","responseId":"#)
        buffer.writeJSONString(id)
        buffer.writeInteger(UInt8(ascii: "}"))
    }

    /// Encodes a stream of ``ChatChunk``s as Gemini's `alt=sse` stream, where every event is a whole
    /// `GenerateContentResponse` (`data: {...}` with CRLF line ends, as Google sends them).
    ///
    /// Text goes out as it comes, one event per chunk. Gemini sends function calls whole, so a call's fragments
    /// are gathered and the call is sent, in the order the calls began, once its arguments are a complete JSON
    /// object, or the next call begins, or the stream ends (arguments that are not a JSON object are then sent as
    /// `{}`). Fragments of a call already sent are dropped: providers stream one call after another. The chunk
    /// that carries a finish reason ends the stream: its event has the `finishReason`, the calls not sent yet and
    /// the usage known so far; a usage that arrives after it gets an event of its own, as Gemini may send.
    /// ``finish(finishReason:usage:)`` ends a stream no chunk ended.
    ///
    /// ```swift
    /// var encoder = GeminiGenerateServer.StreamEncoder(id: "resp-1", model: "gemini-2.5-flash")
    /// for try await chunk in chain.stream(request) {
    ///     for event in encoder.encode(chunk) { try await writer.write(event) }
    /// }
    /// for event in encoder.finish() { try await writer.write(event) }
    /// ```
    public struct StreamEncoder: Sendable {
        private struct PendingCall: Sendable {
            var id: String?
            var name: String?
            var arguments = ""
            var state: ProviderState?
            var sent = false
            var scanner = ObjectScanner()
        }

        /// Follows a JSON text fragment by fragment, in one pass, to tell when its outermost object closes; strings
        /// (and the braces inside them) are skipped.
        private struct ObjectScanner: Sendable {
            private var depth = 0
            private var inString = false
            private var escaped = false
            private var opened = false
            /// Whether the outermost object closed (or the text stopped being an object: it then never closes).
            private(set) var isClosed = false
            private var broken = false

            mutating func scan(_ fragment: String) {
                guard !isClosed, !broken else { return }
                for byte in fragment.utf8 {
                    if inString {
                        if escaped {
                            escaped = false
                        } else if byte == UInt8(ascii: "\\") {
                            escaped = true
                        } else if byte == UInt8(ascii: "\"") {
                            inString = false
                        }
                        continue
                    }
                    switch byte {
                    case UInt8(ascii: "\""):
                        inString = true
                    case UInt8(ascii: "{"), UInt8(ascii: "["):
                        if !opened && byte != UInt8(ascii: "{") {
                            broken = true
                            return
                        }
                        opened = true
                        depth = depth.saturatingAdd(1)
                    case UInt8(ascii: "}"), UInt8(ascii: "]"):
                        depth -= 1
                        if depth == 0 && opened {
                            isClosed = true
                            return
                        }
                        if depth < 0 {
                            broken = true
                            return
                        }
                    case 0x20, 0x0A, 0x0D, 0x09:
                        continue
                    default:
                        if !opened {
                            broken = true
                            return
                        }
                    }
                }
            }
        }

        private let id: String
        private let model: String
        private let includeCallIDs: Bool
        /// Tool calls in the order they began, and their positions by their index in the chunks.
        private var calls: [PendingCall] = []
        private var positions: [Int: Int] = [:]
        /// The calls before this position were sent (calls are sent in order).
        private var unsentFrom = 0
        private var usage: Usage?
        private var usageSent = false
        /// Whether an event with a `finishReason` was sent.
        public private(set) var isFinished = false

        /// Creates an encoder.
        ///
        /// - Parameters:
        ///   - id: The `responseId` of every event.
        ///   - model: The `modelVersion` of every event.
        ///   - includeCallIDs: Whether function calls carry an `id` (see
        ///     ``GeminiGenerateServer/encodeResponse(_:id:model:includeCallIDs:)``).
        public init(id: String, model: String, includeCallIDs: Bool = true) {
            self.id = id
            self.model = model
            self.includeCallIDs = includeCallIDs
        }

        /// The events for one chunk: none, one, or (for a usage after the end) a usage event.
        public mutating func encode(_ chunk: ChatChunk) -> [String] {
            guard chunk.kind == .delta else { return [] }
            if let reported = chunk.usage { usage = reported }
            if isFinished {
                return chunk.usage != nil ? usageEvent() : []
            }
            var complete: [Call] = []
            for delta in chunk.toolCallDeltas {
                let position: Int
                if let known = positions[delta.index] {
                    position = known
                } else {
                    // A new call: the ones before it are whole (providers stream one call after another).
                    if chunk.finishReason == nil { complete += takeUnsentCalls() }
                    position = calls.count
                    positions[delta.index] = position
                    calls.append(PendingCall())
                }
                // In place: a call streamed in many fragments is not copied for each.
                guard !calls[position].sent else { continue }
                if let id = delta.id { calls[position].id = id }
                if let name = delta.name { calls[position].name = name }
                if let state = delta.providerState { calls[position].state = state }
                calls[position].arguments += delta.arguments
                calls[position].scanner.scan(delta.arguments)
                if chunk.finishReason == nil, position == unsentFrom, calls[position].scanner.isClosed,
                    Self.isObject(calls[position].arguments)
                {
                    complete += takeUnsentCalls()
                }
            }
            if let reason = chunk.finishReason {
                return [finalEvent(text: chunk.content, reason: reason)]
            }
            guard !chunk.content.isEmpty || !complete.isEmpty else { return [] }
            return [event(text: chunk.content, calls: complete, finishReason: nil)]
        }

        /// The last event, when no chunk carried a finish reason; a usage event when `usage` was not sent yet.
        ///
        /// - Parameters:
        ///   - finishReason: Why the answer ended; `STOP` by default.
        ///   - usage: The answer's usage; by default the one a chunk carried.
        public mutating func finish(finishReason: FinishReason? = nil, usage: Usage? = nil) -> [String] {
            if let usage { self.usage = usage }
            if isFinished {
                return usage != nil ? usageEvent() : []
            }
            return [finalEvent(text: "", reason: finishReason ?? (calls.isEmpty ? .stop : .toolCalls))]
        }

        /// An error event, for a stream that fails after its head was sent.
        ///
        /// - Parameters:
        ///   - code: The HTTP status the error stands for.
        ///   - message: What went wrong.
        ///   - status: The RPC status name (`UNAVAILABLE`, `INTERNAL`, ...).
        public static func errorEvent(code: Int, message: String, status: String) -> String {
            var buffer = ByteBufferAllocator().buffer(capacity: 64 + message.utf8.count)
            GeminiGenerateServer.writeError(code: code, message: message, status: status, into: &buffer)
            return frame(buffer)
        }

        /// The calls not sent yet, in the order they began, marked sent.
        private mutating func takeUnsentCalls() -> [Call] {
            var unsent: [Call] = []
            for position in unsentFrom..<calls.count {
                calls[position].sent = true
                let call = calls[position]
                unsent.append(Call(id: call.id, name: call.name, arguments: call.arguments, state: call.state))
            }
            unsentFrom = calls.count
            return unsent
        }

        private mutating func finalEvent(text: String, reason: FinishReason) -> String {
            let remaining = takeUnsentCalls()
            isFinished = true
            usageSent = usage != nil
            return event(text: text, calls: remaining, finishReason: GeminiGenerateServer.finishReason(for: reason), usage: usage)
        }

        private mutating func usageEvent() -> [String] {
            guard !usageSent, let usage else { return [] }
            usageSent = true
            var buffer = ByteBufferAllocator().buffer(capacity: 160)
            buffer.writeRaw(#"{"usageMetadata":{"promptTokenCount":"#)
            let reasoning = min(max(0, usage.reasoningTokens ?? 0), usage.completionTokens)
            buffer.writeJSONInt(usage.promptTokens)
            buffer.writeJSONField("candidatesTokenCount", int: usage.completionTokens - reasoning)
            buffer.writeJSONField("totalTokenCount", int: usage.totalTokens)
            if let cached = usage.cachedTokens { buffer.writeJSONField("cachedContentTokenCount", int: cached) }
            if let thoughts = usage.reasoningTokens { buffer.writeJSONField("thoughtsTokenCount", int: thoughts) }
            buffer.writeRaw(#"},"modelVersion":"#)
            buffer.writeJSONString(model)
            buffer.writeRaw(#","responseId":"#)
            buffer.writeJSONString(id)
            buffer.writeInteger(UInt8(ascii: "}"))
            return [Self.frame(buffer)]
        }

        private func event(text: String, calls: [Call], finishReason: String?, usage: Usage? = nil) -> String {
            var buffer = ByteBufferAllocator().buffer(capacity: 192 + text.utf8.count)
            GeminiGenerateServer.writeResponse(
                text: text, calls: calls, finishReason: finishReason, finishing: finishReason != nil, usage: usage, id: id,
                model: model, includeCallIDs: includeCallIDs, into: &buffer)
            return Self.frame(buffer)
        }

        /// Whether `arguments` is a JSON object (parsed once, when the scanner saw its outermost object close).
        private static func isObject(_ arguments: String) -> Bool {
            if case .object? = try? JSONValue(parsing: arguments) { return true }
            return false
        }

        /// `data: JSON\r\n\r\n`.
        private static func frame(_ data: ByteBuffer) -> String {
            var framed = ByteBufferAllocator().buffer(capacity: data.readableBytes + 12)
            framed.writeRaw("data: ")
            framed.writeImmutableBuffer(data)
            framed.writeRaw("\r\n\r\n")
            return String(buffer: framed)
        }
    }
}
