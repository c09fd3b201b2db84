import Foundation
import LLMFallback

/// The JSON shapes the command prints with `--json`.
enum ResponseJSON {
    /// The whole response: content, provider, provider name, model, latency, attempts, usage, finish reason,
    /// tool calls and the attempt trace.
    static func response(_ response: ChatResponse) -> JSONValue {
        var object: JSONObject = [
            "content": .string(response.content),
            "provider": .string(response.provider),
            "provider_name": .string(response.providerName),
            "model": .string(response.model),
            "latency_ms": .double(rounded(response.latencyMs)),
            "attempts": .int(response.attempts),
            "usage": response.usage.map(usage) ?? .null,
            "finish_reason": response.finishReason.map { .string($0.description) } ?? .null,
            "tool_calls": .array(response.toolCalls.map(toolCall)),
            "trace": .array(response.trace.map(attempt)),
        ]
        if let id = response.id { object["id"] = .string(id) }
        return .object(object)
    }

    /// Token counts.
    static func usage(_ usage: Usage) -> JSONValue {
        var object: JSONObject = [
            "prompt_tokens": .int(usage.promptTokens),
            "completion_tokens": .int(usage.completionTokens),
            "total_tokens": .int(usage.totalTokens),
        ]
        if let cached = usage.cachedTokens { object["cached_tokens"] = .int(cached) }
        if let reasoning = usage.reasoningTokens { object["reasoning_tokens"] = .int(reasoning) }
        return .object(object)
    }

    /// One tool call; `arguments` is the JSON text the model produced.
    static func toolCall(_ call: ToolCall) -> JSONValue {
        ["id": .string(call.id), "name": .string(call.name), "arguments": .string(call.arguments)]
    }

    /// One attempt of the trace.
    static func attempt(_ record: AttemptRecord) -> JSONValue {
        var object: JSONObject = [
            "provider": .string(record.provider),
            "model": .string(record.model),
            "number": .int(record.number),
            "outcome": .string(outcome(record.outcome)),
            "duration_ms": .double(rounded(record.duration.milliseconds)),
        ]
        if let status = record.status { object["status"] = .int(status) }
        if let message = record.message { object["message"] = .string(message) }
        return .object(object)
    }

    /// `success`, `cancelled`, or the error class label (`server_error`, `rate_limited`, ...).
    static func outcome(_ outcome: AttemptRecord.Outcome) -> String {
        switch outcome {
        case .success: return "success"
        case .cancelled: return "cancelled"
        case .failure(let kind): return kind.label
        }
    }

    /// The value as JSON text: pretty-printed with sorted keys, or compact for one-line-per-event output.
    static func text(_ value: JSONValue, pretty: Bool = true) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting =
            pretty ? [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes] : [.sortedKeys, .withoutEscapingSlashes]
        guard let data = try? encoder.encode(value) else { return "null" }
        return String(decoding: data, as: UTF8.self)
    }

    private static func rounded(_ value: Double) -> Double {
        (value * 10).rounded() / 10
    }
}
