import Foundation
import LLMFallback
import NIOCore
import Synchronization

/// Makes OpenAI-style ids (`chatcmpl-...`) without a system call per request: a random per-process prefix and a
/// counter.
final class CompletionIDs: Sendable {
    private let prefix: String
    private let counter = Atomic<UInt64>(0)

    init() {
        let alphabet = Array("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
        var generator = SystemRandomNumberGenerator()
        prefix = "chatcmpl-" + String((0..<12).map { _ in alphabet.randomElement(using: &generator)! })
    }

    func next() -> String {
        let value = counter.wrappingAdd(1, ordering: .relaxed).newValue
        return prefix + String(value, radix: 36)
    }
}

/// Seconds since 1970, as OpenAI's `created`.
@inline(__always)
func unixTime() -> Int {
    let seconds = Date().timeIntervalSince1970
    // Total: a clock set absurdly far away is reported as 0 rather than trapping.
    return seconds.isFinite && abs(seconds) < 1e15 ? Int(seconds) : 0
}

enum CompletionEncoder {
    /// Writes a whole `chat.completion` object.
    static func write(_ response: ChatResponse, id: String, created: Int, into buffer: inout ByteBuffer) {
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
    static func writeUsage(_ usage: Usage, into buffer: inout ByteBuffer) {
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
}

/// Turns a chain's ``ChatChunk``s into OpenAI `chat.completion.chunk` Server-Sent Events.
///
/// The first event carries `"role":"assistant"`; text becomes `delta.content`, tool call fragments
/// `delta.tool_calls` (`index`, and `id`, `type`, `function.name` on a call's first fragment); a finish reason ends
/// the choice with an empty delta; usage is held for the closing usage chunk (`"choices":[]`) that
/// `stream_options.include_usage` asks for. The stream ends with `data: [DONE]`, or with an error event and no
/// `[DONE]` when it fails.
struct ChunkEncoder {
    /// `data: {"id":"...","object":"chat.completion.chunk","created":...,"model":`, written once per stream.
    private let prefix: ByteBuffer
    private var model: String
    private var modelJSON: ByteBuffer
    private let includeUsage: Bool
    private var sentRole = false
    private var usage: Usage?
    private var finished = false

    init(id: String, created: Int, model: String, includeUsage: Bool, allocator: ByteBufferAllocator) {
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
    var isFinished: Bool { finished }

    /// Writes the events for `chunk` (none for a chunk that only carries usage).
    mutating func write(_ chunk: ChatChunk, into buffer: inout ByteBuffer) {
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
            buffer.writeRaw("data: ")
            buffer.writeString(raw)
            buffer.writeRaw("\n\n")
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
        buffer.writeRaw("}]}\n\n")
    }

    /// Writes the clean end: the usage chunk when asked for and known, then `data: [DONE]`.
    mutating func writeEnd(into buffer: inout ByteBuffer) {
        if includeUsage, let usage {
            writeHead(into: &buffer)
            buffer.writeRaw(#","choices":[],"usage":"#)
            CompletionEncoder.writeUsage(usage, into: &buffer)
            buffer.writeRaw("}\n\n")
        }
        buffer.writeRaw("data: [DONE]\n\n")
    }

    /// Writes an error event, the last thing a failed stream sends (no `[DONE]` follows).
    static func writeError(_ error: GatewayError, into buffer: inout ByteBuffer) {
        buffer.writeRaw("data: ")
        error.writeObject(into: &buffer)
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
enum InfoEncoder {
    static func models(_ names: [String], created: Int) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeRaw(#"{"object":"list","data":["#)
        for (offset, name) in names.enumerated() {
            if offset > 0 { buffer.writeInteger(UInt8(ascii: ",")) }
            model(name, created: created, into: &buffer)
        }
        buffer.writeRaw("]}")
        return buffer
    }

    static func model(_ name: String, created: Int, into buffer: inout ByteBuffer) {
        buffer.writeRaw(#"{"id":"#)
        buffer.writeJSONString(name)
        buffer.writeRaw(#","object":"model","created":"#)
        buffer.writeJSONInt(created)
        buffer.writeRaw(#","owned_by":"llm-fallback"}"#)
    }

    /// `{"status":...,"chains":{"name":{"status":...,"providers":[...]}}}`: a chain is `ok` when every breaker is
    /// closed, `down` when every breaker is open, `degraded` otherwise.
    static func health(_ chains: [(name: String, report: [ProviderHealth])], redactor: Redactor) -> ByteBuffer {
        var buffer = ByteBuffer()
        var statuses: [String] = []
        var body = ByteBuffer()
        body.writeRaw(#","chains":{"#)
        for (offset, chain) in chains.enumerated() {
            if offset > 0 { body.writeInteger(UInt8(ascii: ",")) }
            let status = status(of: chain.report)
            statuses.append(status)
            body.writeJSONString(chain.name)
            body.writeRaw(#":{"status":"#)
            body.writeJSONString(status)
            body.writeRaw(#","providers":["#)
            for (index, provider) in chain.report.enumerated() {
                if index > 0 { body.writeInteger(UInt8(ascii: ",")) }
                write(provider, redactor: redactor, into: &body)
            }
            body.writeRaw("]}")
        }
        body.writeRaw("}}")
        let overall = statuses.allSatisfy { $0 == "ok" } ? "ok" : statuses.allSatisfy { $0 == "down" } ? "down" : "degraded"
        buffer.writeRaw(#"{"status":"#)
        buffer.writeJSONString(overall)
        buffer.writeBuffer(&body)
        return buffer
    }

    static func status(of report: [ProviderHealth]) -> String {
        if report.allSatisfy({ $0.state == .closed }) { return "ok" }
        if report.allSatisfy({ $0.state == .open }) { return "down" }
        return "degraded"
    }

    static func write(_ provider: ProviderHealth, redactor: Redactor, into buffer: inout ByteBuffer) {
        buffer.writeRaw(#"{"name":"#)
        buffer.writeJSONString(provider.name)
        buffer.writeRaw(#","kind":"#)
        buffer.writeJSONString(provider.kind)
        buffer.writeRaw(#","model":"#)
        buffer.writeJSONString(provider.model)
        buffer.writeRaw(#","state":"#)
        switch provider.state {
        case .closed: buffer.writeRaw(#""closed""#)
        case .open: buffer.writeRaw(#""open""#)
        case .halfOpen: buffer.writeRaw(#""half_open""#)
        }
        buffer.writeJSONField("consecutive_failures", int: provider.consecutiveFailures)
        buffer.writeRaw(#","reopens_in_ms":"#)
        writeMilliseconds(provider.reopensIn, into: &buffer)
        buffer.writeRaw(#","retry_after_ms":"#)
        writeMilliseconds(provider.retryAfterRemaining, into: &buffer)
        buffer.writeRaw(#","latency_ms":"#)
        if let latency = provider.latency {
            buffer.writeJSONDouble((Self.milliseconds(latency) * 1000).rounded() / 1000)
        } else {
            buffer.writeRaw("null")
        }
        buffer.writeJSONField("attempts", int: provider.attempts)
        buffer.writeJSONField("successes", int: provider.successes)
        buffer.writeJSONField("failures", int: provider.failures)
        buffer.writeRaw(#","failures_by_class":{"#)
        for (offset, entry) in provider.failuresByClass.sorted(by: { $0.key < $1.key }).enumerated() {
            if offset > 0 { buffer.writeInteger(UInt8(ascii: ",")) }
            buffer.writeJSONString(entry.key)
            buffer.writeInteger(UInt8(ascii: ":"))
            buffer.writeJSONInt(entry.value)
        }
        buffer.writeRaw(#"},"share":"#)
        buffer.writeJSONDouble((provider.share * 10000).rounded() / 10000)
        buffer.writeRaw(#","last_error":"#)
        buffer.writeJSONString(orNull: provider.lastError.map(redactor.redact))
        buffer.writeInteger(UInt8(ascii: "}"))
    }

    /// Whole milliseconds, rounded up; `null` for none. Total: a duration from an upstream's header can be anything.
    private static func writeMilliseconds(_ duration: Duration?, into buffer: inout ByteBuffer) {
        if let duration {
            buffer.writeJSONInt(wholeMilliseconds(duration))
        } else {
            buffer.writeRaw("null")
        }
    }

    /// The longest duration `/health/providers` reports as it is; longer ones show as this (about 34,800 years).
    static let longestReported = Duration.seconds(Int64(1) << 40)

    /// `duration` in whole milliseconds, rounded up, clamped to `0...longestReported`: no conversion can trap
    /// (`Duration.components` itself traps past `Int64.max` seconds, so the clamp comes first).
    static func wholeMilliseconds(_ duration: Duration) -> Int {
        let clamped = min(max(duration, .zero), longestReported)
        let (seconds, attoseconds) = clamped.components
        let (milliseconds, rest) = attoseconds.quotientAndRemainder(dividingBy: 1_000_000_000_000_000)
        return Int(seconds) * 1000 + Int(milliseconds) + (rest > 0 ? 1 : 0)
    }

    /// `duration` in fractional milliseconds, clamped as ``wholeMilliseconds(_:)`` is.
    static func milliseconds(_ duration: Duration) -> Double {
        let clamped = min(max(duration, .zero), longestReported)
        let (seconds, attoseconds) = clamped.components
        return Double(seconds) * 1000 + Double(attoseconds) / 1e15
    }
}
